"""docs/http-api.md's runnable examples (```sh blocks), run top to bottom against one
fresh server, each block in its own `bash -e`, with $PLEXUS_URL and $PLEXUS_KEY set.
A doc example that stops working fails this test, so the docs stay true."""
import os
import pathlib
import re
import subprocess

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "http-api.md"
BLOCK = re.compile(r"^```sh\n(.*?)^```", re.S | re.M)


def blocks():
    return BLOCK.findall(DOC.read_text())


def test_docs_have_runnable_examples():
    assert len(blocks()) >= 15


def test_http_api_doc_examples_run(server):
    env = dict(os.environ, PLEXUS_URL=server.base_url, PLEXUS_KEY=server.key)
    for i, code in enumerate(blocks()):
        r = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", code], env=env,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"block {i + 1} of {DOC.name} failed:\n{code}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
