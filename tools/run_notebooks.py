#!/usr/bin/python3
"""Execute every Jupyter notebook under the given folders/files on the real Deno kernel, headlessly.

Usage:
    /usr/bin/python3 tools/run_notebooks.py [--deno PATH] [--timeout S] [--total-timeout S]
                                            [--write] PATH...

Each notebook gets a fresh `deno jupyter --kernel` started with its working directory set to the
notebook's own folder (that is what Jupyter Lab does too), so relative imports such as
`import { x } from "../mod.ts";` resolve the same way here and in Lab, and Deno finds the
project's deno.json (import map, nodeModulesDir) by walking up from that folder.

Why not `jupyter nbconvert --execute`: the Deno kernel sometimes publishes a cell's output just
after it reports the cell idle, and nbconvert/nbclient then drop it silently. This runner keeps
reading IOPub for a short grace period after idle and attaches late messages to the cell that
produced them (matched by the request's msg_id).

With --write the executed outputs are saved back into the notebooks (`deno task notebooks:render`).
With --check-outputs the committed outputs are compared with the fresh ones, and a notebook fails
when they differ (it is stale: re-render it): every code cell must produce the same kinds of
output (output type, MIME types, PNG sizes), the same text apart from its numbers, and numbers
within the notebook's tolerance, `metadata.infodiff.tolerance` = {"rtol": r, "atol": a}
(default rtol = atol = 1e-3: the runs are seeded, so only floating-point differences between
machines remain). A committed notebook over 1 MB fails the check too.

Output: one line per notebook (`PASS path (N cells, T s)` / `FAIL path ...` with the failing cell's
index, error name/value and traceback tail), then exactly one line `notebooks: P passed, F failed`.
Exit status 1 when any notebook failed, 0 otherwise (also when no notebook was found).

Needs the Debian packages python3-nbformat and jupyter-client (run with /usr/bin/python3).
"""

import argparse
import base64
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from jupyter_client.manager import KernelManager

DENO_NPM_SPEC = "deno@2.9.6"
KERNEL_NAME = "infodiff-deno"
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class NotebookFailure(Exception):
    """A notebook failed: carries the message printed after FAIL."""


# ---------------------------------------------------------------------------------------------
# Comparing committed outputs with fresh ones

NUMBER = re.compile(r"[-−+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
DEFAULT_TOLERANCE = {"rtol": 1e-3, "atol": 1e-3}
MAX_NOTEBOOK_BYTES = 1_000_000


def output_signature(output):
    """What one output is, for comparison: (kind, texts, PNG sizes)."""
    kind = output.get("output_type")
    if kind == "stream":
        return (f"stream:{output.get('name')}", [output.get("text", "")], [])
    if kind == "error":
        return ("error", [f"{output.get('ename')}: {output.get('evalue')}"], [])
    data = output.get("data", {})
    texts = [data.get("text/plain", "")]
    sizes = [png_size(data["image/png"])] if "image/png" in data else []
    return (f"{kind}:{','.join(sorted(data))}", texts, sizes)


def png_size(base64_text):
    raw = base64.b64decode("".join(base64_text) if isinstance(base64_text, list) else base64_text)
    return int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big")


def split_numbers(text):
    """The text with every number replaced by #, and the numbers."""
    text = re.sub(r"\s+", " ", "".join(text) if isinstance(text, list) else text).strip()
    numbers = [float(m.replace("−", "-")) for m in NUMBER.findall(text)]
    return NUMBER.sub("#", text), numbers


def compare_outputs(index, committed, fresh, tolerance):
    """None when the fresh outputs of a cell match the committed ones, else what differs."""
    if len(committed) != len(fresh):
        return f"cell {index}: {len(committed)} committed outputs, {len(fresh)} now"
    rtol, atol = tolerance["rtol"], tolerance["atol"]
    for old, new in zip(committed, fresh):
        (old_kind, old_texts, old_sizes), (new_kind, new_texts, new_sizes) = \
            output_signature(old), output_signature(new)
        if old_kind != new_kind:
            return f"cell {index}: committed output is {old_kind}, now {new_kind}"
        if old_sizes != new_sizes:
            return f"cell {index}: committed picture is {old_sizes}, now {new_sizes}"
        for old_text, new_text in zip(old_texts, new_texts):
            (old_words, old_numbers), (new_words, new_numbers) = \
                split_numbers(old_text), split_numbers(new_text)
            if old_words != new_words or len(old_numbers) != len(new_numbers):
                return f"cell {index}: text differs:\n        committed: {old_words[:300]}\n" \
                       f"        now:       {new_words[:300]}"
            for a, b in zip(old_numbers, new_numbers):
                if abs(a - b) > atol + rtol * max(abs(a), abs(b)):
                    return f"cell {index}: number {a:g} committed, {b:g} now " \
                           f"(tolerance rtol {rtol:g}, atol {atol:g})"
    return None


def stale_outputs(committed_cells, notebook, path):
    """Why the committed outputs are stale (None when they match what ran now)."""
    size = path.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        return f"the committed notebook is {size / 1e6:.2f} MB, over the 1 MB limit"
    tolerance = {**DEFAULT_TOLERANCE, **notebook.metadata.get("infodiff", {}).get("tolerance", {})}
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        committed = committed_cells.get(index)
        if committed is None:
            return f"cell {index} is not in the committed notebook"
        difference = compare_outputs(index, committed, cell.outputs, tolerance)
        if difference:
            return difference
    return None


# ---------------------------------------------------------------------------------------------
# Deno binary and kernelspec


def resolve_deno(explicit):
    """Absolute path of the deno executable: --deno, $DENO_BIN, `deno` on PATH, else via npx."""
    for source, candidate in (("--deno", explicit), ("DENO_BIN", os.environ.get("DENO_BIN"))):
        if candidate:
            found = shutil.which(candidate) or (candidate if os.path.isfile(candidate) else None)
            if not found:
                raise SystemExit(f"run_notebooks: {source} names {candidate!r}, which is not an "
                                 "executable file; expected the path of a deno binary")
            return os.path.realpath(found)
    on_path = shutil.which("deno")
    if on_path:
        return os.path.realpath(on_path)
    return deno_from_npx()


def deno_from_npx():
    """Ask `npx -y deno@2.9.6` for its own binary (Deno.execPath()), run outside the project."""
    npx = shutil.which("npx")
    if not npx:
        raise SystemExit("run_notebooks: no deno found (--deno, DENO_BIN, PATH) and no npx to "
                         f"fetch {DENO_NPM_SPEC}; expected one of them")
    with tempfile.TemporaryDirectory(prefix="deno-resolve-") as neutral_dir:
        result = subprocess.run(
            [npx, "-y", DENO_NPM_SPEC, "eval", "console.log(Deno.execPath())"],
            cwd=neutral_dir, capture_output=True, text=True, timeout=600,
            env={**os.environ, "NO_COLOR": "1"},
        )
    path = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    if result.returncode != 0 or not os.path.isfile(path):
        raise SystemExit(f"run_notebooks: `npx -y {DENO_NPM_SPEC} eval` did not print a deno "
                         f"path (exit {result.returncode}); stderr:\n{result.stderr[-2000:]}")
    return path


def infodiff_cache(root):
    """The infodiff cache folder the kernels get, inside the runner's scratch folder."""
    return Path(root) / "infodiff-cache"


def write_kernelspec(root, deno):
    """Write <root>/kernels/<name>/kernel.json for the Deno kernel; return the kernel name."""
    spec_dir = Path(root) / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [deno, "jupyter", "--kernel", "--conn", "{connection_file}"],
        "display_name": "Deno (infodiff runner)",
        "language": "typescript",
        # infodiff's cache, emptied before each notebook (main): a study that calibrates itself
        # stores its profile there, and one stored by an earlier run or an earlier notebook must
        # not change a notebook's outputs (issue 26): each reads as it would opened alone
        "env": {"NO_COLOR": "1", "INFODIFF_CACHE": str(infodiff_cache(root))},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=2))
    return KERNEL_NAME


# ---------------------------------------------------------------------------------------------
# Collecting notebooks


def collect_notebooks(paths):
    """Sorted, de-duplicated .ipynb files under the given paths (checkpoints skipped)."""
    found = []
    for given in paths:
        path = Path(given)
        if path.is_file() and path.suffix == ".ipynb":
            found.append(path)
        elif path.is_dir():
            found.extend(p for p in sorted(path.rglob("*.ipynb"))
                         if ".ipynb_checkpoints" not in p.parts)
        elif path.exists():
            raise SystemExit(f"run_notebooks: {given} is neither a folder nor an .ipynb file")
        else:
            # A folder with no tracked notebook does not exist in a fresh clone; that is "none".
            print(f"run_notebooks: {given} does not exist; no notebooks there", file=sys.stderr)
    unique = []
    for path in found:
        if path.resolve() not in {p.resolve() for p in unique}:
            unique.append(path)
    return unique


# ---------------------------------------------------------------------------------------------
# Executing one notebook


class CellRecorder:
    """Turns IOPub messages into nbformat outputs on the cell whose request produced them."""

    def __init__(self):
        self.cell_by_msg_id = {}
        self.errors_by_msg_id = {}
        self.outputs_by_display_id = {}
        self.late_outputs = 0  # outputs that arrived after their cell reported idle

    def track(self, msg_id, cell):
        self.cell_by_msg_id[msg_id] = cell
        cell.outputs = []

    def record(self, msg):
        """Attach one IOPub message; returns (parent msg_id, execution_state or None)."""
        parent_id = msg.get("parent_header", {}).get("msg_id")
        msg_type = msg["header"]["msg_type"]
        content = msg["content"]
        cell = self.cell_by_msg_id.get(parent_id)
        if msg_type == "status":
            return parent_id, content.get("execution_state")
        if cell is None:
            return parent_id, None
        if msg_type == "stream":
            self._append_stream(cell, content["name"], content.get("text", ""))
        elif msg_type in ("execute_result", "display_data"):
            kwargs = {"data": content.get("data", {}), "metadata": content.get("metadata", {})}
            if msg_type == "execute_result":
                kwargs["execution_count"] = content.get("execution_count")
            output = nbformat.v4.new_output(msg_type, **kwargs)
            cell.outputs.append(output)
            display_id = content.get("transient", {}).get("display_id")
            if display_id is not None:
                self.outputs_by_display_id.setdefault(display_id, []).append(output)
        elif msg_type == "update_display_data":
            self._update_display(content)
        elif msg_type == "clear_output":
            cell.outputs = []
        elif msg_type == "error":
            cell.outputs.append(nbformat.v4.new_output(
                "error", ename=content.get("ename", ""), evalue=content.get("evalue", ""),
                traceback=content.get("traceback", [])))
            self.errors_by_msg_id[parent_id] = content
        elif msg_type == "execute_input" and content.get("execution_count") is not None:
            cell.execution_count = content["execution_count"]
        return parent_id, None

    @staticmethod
    def _append_stream(cell, name, text):
        last = cell.outputs[-1] if cell.outputs else None
        if last is not None and last.get("output_type") == "stream" and last.get("name") == name:
            last["text"] += text
        else:
            cell.outputs.append(nbformat.v4.new_output("stream", name=name, text=text))

    def _update_display(self, content):
        display_id = content.get("transient", {}).get("display_id")
        for output in self.outputs_by_display_id.get(display_id, []):
            output["data"] = content.get("data", {})
            output["metadata"] = content.get("metadata", {})


class NotebookRunner:
    def __init__(self, kernel_name, cell_timeout, late_output_s, startup_timeout):
        self.kernel_name = kernel_name
        self.cell_timeout = cell_timeout
        self.late_output_s = late_output_s
        self.startup_timeout = startup_timeout

    def run(self, notebook, cwd, deadline, kernel_log):
        """Execute all code cells in order; raises NotebookFailure on the first failure."""
        manager = KernelManager(kernel_name=self.kernel_name)
        self.recorder = None
        client = None
        try:
            manager.start_kernel(cwd=str(cwd), stdout=kernel_log, stderr=kernel_log)
            client = manager.client()
            client.start_channels()
            try:
                client.wait_for_ready(timeout=min(self.startup_timeout, remaining(deadline)))
            except RuntimeError as error:
                raise NotebookFailure(f"kernel did not start: {error}") from error
            recorder = self.recorder = CellRecorder()
            for index, cell in enumerate(notebook.cells):
                if cell.cell_type != "code" or not cell.source.strip():
                    continue
                self.run_cell(manager, client, recorder, index, cell, deadline)
            self.drain(client, recorder, self.late_output_s)
        finally:
            shutdown(manager, client)

    def run_cell(self, manager, client, recorder, index, cell, deadline):
        msg_id = client.execute(cell.source, store_history=True, allow_stdin=False,
                                stop_on_error=True)
        recorder.track(msg_id, cell)
        cell_deadline = min(time.monotonic() + self.cell_timeout, deadline)
        idle_at = None
        while True:
            now = time.monotonic()
            if idle_at is not None and now >= idle_at + self.late_output_s:
                break
            if idle_at is None and now >= cell_deadline:
                interrupt(manager)
                limit = "overall time limit" if cell_deadline == deadline else \
                    f"{self.cell_timeout:g} s cell timeout"
                raise NotebookFailure(f"cell {index} did not finish within the {limit}")
            wait = (idle_at + self.late_output_s - now) if idle_at is not None else \
                min(1.0, cell_deadline - now)
            try:
                msg = client.get_iopub_msg(timeout=max(wait, 0.01))
            except queue.Empty:
                if idle_at is None and not manager.is_alive():
                    raise NotebookFailure(f"kernel died while running cell {index}")
                continue
            parent_id, state = recorder.record(msg)
            if idle_at is not None and msg["header"]["msg_type"] != "status":
                recorder.late_outputs += 1
            if parent_id == msg_id and state == "idle" and idle_at is None:
                idle_at = time.monotonic()
        reply_status = self.execute_reply_status(client, msg_id)
        error = recorder.errors_by_msg_id.get(msg_id)
        if error is not None or reply_status not in ("ok", None):
            raise NotebookFailure(describe_error(index, error, reply_status))

    @staticmethod
    def execute_reply_status(client, msg_id):
        """Status of this request's execute_reply (None when it did not come within 5 s)."""
        end = time.monotonic() + 5.0
        while time.monotonic() < end:
            try:
                reply = client.get_shell_msg(timeout=max(end - time.monotonic(), 0.01))
            except queue.Empty:
                return None
            if reply.get("parent_header", {}).get("msg_id") == msg_id:
                return reply["content"].get("status")
        return None

    @staticmethod
    def drain(client, recorder, seconds):
        """Collect stragglers still on IOPub (e.g. output of a timer) before shutdown."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                recorder.record(client.get_iopub_msg(timeout=max(end - time.monotonic(), 0.01)))
            except queue.Empty:
                break


def remaining(deadline):
    return max(deadline - time.monotonic(), 0.1)


def interrupt(manager):
    try:
        manager.interrupt_kernel()
    except Exception:  # noqa: BLE001 - the kernel is shut down right after anyway
        pass


def shutdown(manager, client):
    """Always stop the kernel: polite shutdown request first, then kill."""
    if client is not None:
        try:
            client.stop_channels()
        except Exception:  # noqa: BLE001
            pass
    try:
        if manager.has_kernel:
            manager.shutdown_kernel(now=False)
    except Exception:  # noqa: BLE001
        try:
            manager.shutdown_kernel(now=True)
        except Exception:  # noqa: BLE001
            pass
    if hasattr(manager, "cleanup_resources"):
        manager.cleanup_resources()


def describe_error(index, error, reply_status):
    if error is None:
        return f"cell {index}: execute_reply status {reply_status!r}"
    lines = [ANSI_ESCAPE.sub("", line) for entry in error.get("traceback", [])
             for line in entry.splitlines()]
    tail = [line for line in lines if line.strip()][-8:]
    head = f"cell {index}: {error.get('ename', '')}: {error.get('evalue', '')}"
    return head + ("\n      " + "\n      ".join(tail) if tail else "")


# ---------------------------------------------------------------------------------------------
# Main


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", help="folders (searched recursively) or .ipynb files")
    parser.add_argument("--deno", help="deno binary (default: $DENO_BIN, deno on PATH, npx)")
    parser.add_argument("--timeout", type=float, default=300.0, help="per-cell limit, s")
    parser.add_argument("--total-timeout", type=float, default=1500.0,
                        help="limit for the whole run, s; notebooks not started by then fail")
    parser.add_argument("--startup-timeout", type=float, default=120.0,
                        help="limit for a kernel to become ready, s")
    parser.add_argument("--late-output", type=float, default=0.3,
                        help="seconds to keep reading output after a cell reports idle")
    parser.add_argument("--write", action="store_true",
                        help="save executed outputs back into the notebooks")
    parser.add_argument("--check-outputs", action="store_true",
                        help="fail a notebook whose committed outputs differ from a fresh run")
    return parser.parse_args(argv)


def display_path(path):
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def stop_on_sigterm(signum, _frame):
    # `timeout` (CI) sends SIGTERM: unwind through the `finally` blocks so kernels are shut down.
    raise SystemExit(128 + signum)


def main(argv=None):
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    args = parse_args(argv)
    notebooks = collect_notebooks(args.paths)
    if not notebooks:
        print("notebooks: 0 passed, 0 failed")
        return 0
    deadline = time.monotonic() + args.total_timeout
    deno = resolve_deno(args.deno)
    print(f"run_notebooks: kernel {deno} jupyter --kernel", flush=True)
    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix="infodiff-jupyter-") as jupyter_dir:
        kernel_name = write_kernelspec(jupyter_dir, deno)
        old_path = os.environ.get("JUPYTER_PATH")
        os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [jupyter_dir, old_path]))
        runner = NotebookRunner(kernel_name, args.timeout, args.late_output, args.startup_timeout)
        for path in notebooks:
            # a profile notebook 02 fitted must not serve notebook 03's study
            shutil.rmtree(infodiff_cache(jupyter_dir), ignore_errors=True)
            ok = run_one(runner, path, deadline, args.write, jupyter_dir, args.check_outputs)
            passed, failed = passed + ok, failed + (not ok)
    print(f"notebooks: {passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


def run_one(runner, path, deadline, write, scratch_dir, check_outputs=False):
    """Run one notebook, print its PASS/FAIL line; returns True when it passed."""
    shown = display_path(path)
    started = time.monotonic()
    if started >= deadline:
        print(f"FAIL {shown} (not run: overall time limit reached)", flush=True)
        return False
    try:
        notebook = nbformat.read(str(path), as_version=4)
    except Exception as error:  # noqa: BLE001 - any unreadable notebook is a failure
        print(f"FAIL {shown} (cannot read notebook: {error})", flush=True)
        return False
    code_cells = sum(1 for cell in notebook.cells if cell.cell_type == "code")
    committed = {i: [dict(o) for o in cell.get("outputs", [])]
                 for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"}
    log_path = Path(scratch_dir) / "kernel.log"
    with open(log_path, "w+b") as kernel_log:
        try:
            runner.run(notebook, path.resolve().parent, deadline, kernel_log)
            failure = None
        except NotebookFailure as error:
            failure = str(error)
        except Exception as error:  # noqa: BLE001 - report, go on with the next notebook
            failure = f"runner error: {type(error).__name__}: {error}"
        kernel_log.flush()
        kernel_log.seek(0)
        kernel_output = kernel_log.read().decode("utf-8", "replace")
    elapsed = time.monotonic() - started
    if failure is None and check_outputs:
        stale = stale_outputs(committed, notebook, path)
        if stale:
            failure = f"committed outputs are stale ({stale}); run `deno task notebooks:render`"
    if write:
        nbformat.write(notebook, str(path))
    late = runner.recorder.late_outputs if runner.recorder else 0
    late_note = f", {late} late output{'s' if late != 1 else ''} kept" if late else ""
    if failure is None:
        print(f"PASS {shown} ({code_cells} cells, {elapsed:.1f} s{late_note})", flush=True)
        return True
    print(f"FAIL {shown} ({code_cells} cells, {elapsed:.1f} s): {failure}", flush=True)
    log_tail = [line for line in ANSI_ESCAPE.sub("", kernel_output).splitlines()
                if line.strip() and '"deno jupyter" is unstable' not in line][-10:]
    if log_tail:
        print("      kernel log tail:\n      " + "\n      ".join(log_tail), flush=True)
    return False


if __name__ == "__main__":
    sys.exit(main())
