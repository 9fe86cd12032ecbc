"""shim.request: option values and the environment resolved into a request."""

from __future__ import annotations

import os

import pytest

from shim.errors import UsageError
from shim.request import resolve


def test_profile_goes_to_the_environment_and_region_to_the_argv() -> None:
    request = resolve({"cluster": "c", "profile": "p", "region": "r"}, None, {"HOME": "/h"}, [])
    assert request.command == [
        "aws",
        "--region",
        "r",
        "eks",
        "get-token",
        "--cluster-name",
        "c",
        "--output",
        "json",
    ]
    assert request.env["AWS_PROFILE"] == "p"
    assert request.cache_dir == "/h/.kube/cache/eks-token-shim"


def test_a_cache_dir_under_home_is_under_the_given_environments_home() -> None:
    assert resolve({"cluster": "c", "cache_dir": "~"}, None, {"HOME": "/h"}, []).cache_dir == "/h"
    assert (
        resolve({"cluster": "c", "cache_dir": "~/c"}, None, {"HOME": "/h/"}, []).cache_dir == "/h/c"
    )
    # Without HOME there, as without it anywhere: Python's (the password database's) home.
    expected = os.path.abspath(os.path.expanduser("~/c"))
    assert resolve({"cluster": "c", "cache_dir": "~/c"}, None, {}, []).cache_dir == expected


@pytest.mark.parametrize(
    ("values", "flag"),
    [
        ({"cluster": "--role"}, "--cluster"),
        ({"cluster": "c", "region": "-x"}, "--region"),
        ({"cluster": "c", "role_arn": "--output=text"}, "--role-arn"),
    ],
)
def test_a_name_that_would_read_as_an_option_is_a_usage_error(
    values: dict[str, str], flag: str
) -> None:
    """`--cluster=--role` gets past argparse; written into the backend's argv it would be
    an option, and the entry would read back as another selection."""
    value = values[flag[2:].replace("-", "_")]
    with pytest.raises(UsageError) as refused:
        resolve(values, None, {"HOME": "/h"}, [])
    assert refused.value.message == f"{flag} takes a name, not {value!r}: aws would read an option"
