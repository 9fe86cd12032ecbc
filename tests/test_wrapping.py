"""shim.wrapping: one user's exec section wrapped in the shim, and given back."""

from __future__ import annotations

import pytest

from shim import yamlfile
from shim.wrapping import Allowed, exec_section, unwrap_exec, wrap_exec, wrapped, wraps_eks

USER = """\
name: demo
user:
  exec:
    apiVersion: client.authentication.k8s.io/v1beta1
    command: aws
{args}{cluster_info}"""


@pytest.mark.parametrize("args", ["", "    args: [eks, get-token, --cluster-name, c]\n"])
@pytest.mark.parametrize("cluster_info", ["", "    provideClusterInfo: false\n"])
def test_unwrap_gives_back_the_section_wrap_found(args: str, cluster_info: str) -> None:
    text = USER.format(args=args, cluster_info=cluster_info)
    item = yamlfile.parse(text)
    allowed = Allowed("/home/u/.kube/kuberc", "/opt/shim")
    change = wrap_exec(item, "/opt/shim", allowed)
    assert change is not None
    assert change.after == f"/opt/shim -- {change.before}"
    section = exec_section(item)
    assert wrapped(section)
    assert section["provideClusterInfo"] is True  # the heal check needs the server
    assert wrap_exec(item, "/opt/shim") is None  # wrapped once is enough
    undone = unwrap_exec(item)
    assert undone is not None
    assert (undone.before, undone.after, undone.allowed) == (change.after, change.before, allowed)
    assert yamlfile.dump(item).decode() == text


def test_only_a_backend_of_the_table_is_an_eks_section() -> None:
    eks = yamlfile.parse("command: aws\nargs: [eks, get-token, --cluster-name, c]\n")
    other = yamlfile.parse("command: kubelogin\nargs: [get-token]\n")
    shim = yamlfile.parse("command: /x/eks-get-token-use-cache\nargs: ['--', aws]\n")
    assert (wraps_eks(eks), wraps_eks(other), wraps_eks(shim)) == (True, False, False)
    assert wrapped(shim)
