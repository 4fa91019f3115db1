"""The example's bot YAML (rendered the way Terraform's templatefile would) is a config the bot accepts."""

from __future__ import annotations

import re

from bot.config import parse_config
from tests.infra.terraform import INFRA, all_modules

TEMPLATE = INFRA / "examples" / "complete" / "bot.yml.tftpl"


def test_template_variables_are_the_ones_main_tf_passes() -> None:
    module = all_modules()["examples/complete"]
    call = module.labelled("module")["bot"]["bot_config_yaml"]
    passed = set(re.findall(r"\b([a-z_]+) = ", call.split("{", 1)[1]))
    used = set(re.findall(r"\$\{([a-z_]+)\}", TEMPLATE.read_text()))
    assert used == passed == {"region", "cluster", "service"}


def test_rendered_example_config_is_valid() -> None:
    text = TEMPLATE.read_text()
    for name, value in {"region": "us-east-1", "cluster": "example", "service": "web-nginx"}.items():
        text = text.replace("${" + name + "}", value)
    config = parse_config(text, source=str(TEMPLATE))
    assert set(config.services) == {"web"}
    assert config.cluster_name_of(config.services["web"]) == "example"
    assert config.environment_of(config.services["web"]) == "prod"
    assert config.policy is not None
