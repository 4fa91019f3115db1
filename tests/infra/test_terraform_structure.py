"""Every Terraform module under infra/ is well-formed the way `terraform validate` would check it here
(there is no terraform binary): versions, typed and described variables, resolvable references, and
module calls that pass exactly the inputs the called module declares."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infra.terraform import (
    INFRA,
    Module,
    all_modules,
    is_expression,
    load_module,
    referenced_locals,
    referenced_module_outputs,
    referenced_variables,
)

MODULES = all_modules()
EXPECTED = {"bot", "target-service", "exec-permissions", "env-role", "examples/complete"}
PRIMITIVE_TYPES = {"string", "number", "bool", "any"}
META_ARGS = {"source", "count", "for_each", "providers", "depends_on", "version"}


def test_the_expected_modules_exist() -> None:
    assert EXPECTED <= set(MODULES)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_versions_pin_terraform_and_the_aws_provider(name: str) -> None:
    (terraform,) = MODULES[name].blocks("terraform")
    assert terraform["required_version"] == ">= 1.5"
    (providers,) = terraform["required_providers"]
    assert providers["aws"] == {"source": "hashicorp/aws", "version": "~> 5.0"}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_variables_have_descriptions_and_types(name: str) -> None:
    for var, body in MODULES[name].labelled("variable").items():
        assert str(body.get("description", "")).strip(), f"{name}: variable {var} has no description"
        type_ = body.get("type")
        # Primitive types come back as bare words, complex ones as expressions.
        assert type_ in PRIMITIVE_TYPES or is_expression(type_), f"{name}: variable {var} has no type"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_outputs_have_descriptions(name: str) -> None:
    for out, body in MODULES[name].labelled("output").items():
        assert str(body.get("description", "")).strip(), f"{name}: output {out} has no description"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_reference_resolves(name: str) -> None:
    module = MODULES[name]
    declared_vars = set(module.labelled("variable"))
    assert referenced_variables(module) <= declared_vars, "var.* without a variable block"
    assert referenced_locals(module) <= set(module.locals()), "local.* without a locals entry"
    unused = declared_vars - referenced_variables(module)
    assert not unused, f"{name}: variables never used: {sorted(unused)}"


def _called(module: Module, source: str) -> Module:
    path = (module.path / source).resolve()
    assert path.is_dir() and path.is_relative_to(INFRA), (
        f"{module.path}: module source {source} is not in infra/"
    )
    return load_module(path)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_calls_match_the_called_modules_inputs_and_outputs(name: str) -> None:
    module = MODULES[name]
    calls = module.labelled("module")
    for call_name, body in calls.items():
        called = _called(module, body["source"])
        variables = called.labelled("variable")
        passed = set(body) - META_ARGS
        required = {v for v, b in variables.items() if "default" not in b}
        assert passed <= set(variables), (
            f"{name}: module {call_name} gets unknown inputs {passed - set(variables)}"
        )
        assert required <= passed, f"{name}: module {call_name} misses required inputs {required - passed}"
    for call_name, output in referenced_module_outputs(module):
        assert call_name in calls, f"{name}: module.{call_name} is not declared"
        outputs = _called(module, calls[call_name]["source"]).labelled("output")
        assert output in outputs, f"{name}: module.{call_name}.{output} is not an output of that module"


def test_every_policy_is_a_policy_document_the_tests_can_read() -> None:
    """Policies are `aws_iam_policy_document` data sources (or a module's JSON), never inline JSON, so the
    IAM tests below see every statement."""
    policy_attrs = {
        "aws_iam_role_policy": "policy",
        "aws_iam_policy": "policy",
        "aws_iam_role": "assume_role_policy",
        "aws_kms_key": "policy",
        "aws_s3_bucket_policy": "policy",
    }
    for name, module in MODULES.items():
        for (type_, res), body in module.typed("resource").items():
            attr = policy_attrs.get(type_)
            if attr is None or attr not in body:
                continue
            value = body[attr]
            assert is_expression(value) and (
                value.startswith("${data.aws_iam_policy_document.") or value.startswith("${module.")
            ), (
                f"{name}: {type_}.{res}.{attr} must reference a data.aws_iam_policy_document, not {value[:60]!r}"
            )


def test_the_reader_sees_expressions_and_literals_apart(tmp_path: Path) -> None:
    (tmp_path / "a.tf").write_text(
        'variable "x" {\n  description = "d"\n  type = list(string)\n}\nlocals {\n  y = "lit"\n  z = var.x\n}\n'
    )
    module = load_module(tmp_path)
    assert module.locals() == {"y": "lit", "z": "${var.x}"}
    assert module.labelled("variable")["x"]["type"] == "${list(string)}"
    assert referenced_variables(module) == {"x"}
