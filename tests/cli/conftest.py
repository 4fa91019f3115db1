"""Local AWS fixtures (patched moto server + local agent) for end-to-end CLI tests."""

from tests.support.local_aws import (  # noqa: F401
    demo_cluster,
    local_aws,
    local_aws_servers,
    shared_aws,
    shared_demo,
)
