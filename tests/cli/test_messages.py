"""Issue 22: messages and commands a user can act on, through the `pet` command line
(two processes, plus the dealer where needed)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.helpers import free_port, pet_process, run_pet

#: generous bound: the machine running the tests may be loaded; "promptly" means well
#: before the 60 s receive timeouts the commands are given
PROMPT = 45


def _tables(tmp_path, left="id,v\n1,a\n2,b\n3,c\n", right="id,w\n2,x\n3,y\n4,z\n"):
    (tmp_path / "a.csv").write_text(left)
    (tmp_path / "b.csv").write_text(right)
    return tmp_path / "a.csv", tmp_path / "b.csv"


def _psi(party, address, inp, out, *extra):
    role = ("--listen" if party == 0 else "--connect", address)
    args = ["psi", "--party", party, *role, "--input", inp, "--column", "id", "--wait", 60, "--timeout", 60,
            "--no-progress", *extra]
    if out is not None:
        args += ["--output", out]
    return args


def _finish(proc, timeout=PROMPT + 30):
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    return proc.returncode, out, err


# -- item 3: say why the peer stopped --------------------------------------------------------


def test_psi_peer_learns_that_the_other_side_has_duplicate_keys(tmp_path):
    a, b = _tables(tmp_path, right="id,w\n2,x\n2,y\n4,z\n")
    address = f"127.0.0.1:{free_port()}"
    p0 = pet_process(*_psi(0, address, a, tmp_path / "o0.csv"))
    try:
        r1 = run_pet(*_psi(1, address, b, tmp_path / "o1.csv"), timeout=PROMPT + 30)
        start = time.monotonic()
        code0, _, err0 = _finish(p0)
    finally:
        if p0.poll() is None:
            p0.kill()
    assert r1.returncode == 1
    assert "--dedupe" in r1.stderr and "dedupe=True" not in r1.stderr and "Traceback" not in r1.stderr
    assert "(the first: data row 2)" in r1.stderr, r1.stderr  # "2,y" repeats "2,x" (line 3 of the file)
    assert code0 == 1
    assert "the peer failed: duplicate keys in its input" in err0, err0
    assert "before sending a message" not in err0
    assert time.monotonic() - start < PROMPT  # not after the 60 s receive timeout
    assert not (tmp_path / "o0.csv").exists()


def test_interrupted_party_tells_its_peer(tmp_path):
    """Ctrl-C (SIGINT) at party 1 while it waits in the protocol: party 0 says the peer was
    interrupted. Party 1 is a slow-to-answer stand-in: we interrupt it right after it
    connected (its hello done), while party 0 waits for its first message."""
    import signal

    a, _ = _tables(tmp_path)
    port = free_port()
    p0 = pet_process(*_psi(0, f"127.0.0.1:{port}", a, tmp_path / "o0.csv"))
    # party 1: a Python process that connects with the library and waits for a message
    code = ("import sys, time\n"
            "from pet.transport import tcp\n"
            f"ch = tcp.connect('127.0.0.1', {port}, retry_for=60, timeout=120)\n"
            "print('connected', flush=True)\n"
            "with ch:\n"
            "    ch.recv()\n"
            "    ch.recv()\n")
    p1 = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p1.stdout.readline().strip() == "connected"
        time.sleep(0.5)
        p1.send_signal(signal.SIGINT)
        p1.wait(PROMPT)
        code0, _, err0 = _finish(p0)
    finally:
        for p in (p0, p1):
            if p.poll() is None:
                p.kill()
    assert code0 == 1
    assert "the peer was interrupted" in err0, err0


def test_unreachable_dealer_is_called_the_dealer(tmp_path):
    a, b = _tables(tmp_path)
    port = free_port()
    dealer = f"127.0.0.1:{free_port()}"  # nobody listens there
    common = ["--dealer", dealer, "--query", "SELECT COUNT(*) AS n FROM a JOIN b ON a.id = b.id",
              "--wait", 5, "--timeout", 60]
    p0 = pet_process("sql", "--party", 0, "--listen", f"127.0.0.1:{port}", "--table", f"a={a}",
                     "--output", tmp_path / "o0.csv", *common)
    try:
        r1 = run_pet("sql", "--party", 1, "--connect", f"127.0.0.1:{port}", "--table", f"b={b}",
                     "--output", tmp_path / "o1.csv", *common, timeout=PROMPT + 30)
        code0, _, err0 = _finish(p0)
    finally:
        if p0.poll() is None:
            p0.kill()
    for code, err in ((r1.returncode, r1.stderr), (code0, err0)):
        assert code == 1
        assert "could not reach the dealer at" in err and "pet dealer --listen" in err, err
        assert "the other party listening" not in err


def test_dealer_says_which_party_disconnected(tmp_path):
    """A party interrupted in an MPC session: `pet dealer` logs "party 1 disconnected", not
    that the parties asked for different things."""
    import signal

    dealer_port = free_port()
    dealer = pet_process("dealer", "--listen", f"127.0.0.1:{dealer_port}", "--wait", 60)
    port = free_port()
    script = ("import sys, time\n"
              "from pet.transport import tcp, local_pair\n"
              "from pet.mpc import Session\n"
              "party = int(sys.argv[1])\n"
              f"peer = (tcp.listen('127.0.0.1', {port}, accept_timeout=60) if party == 0 else "
              f"tcp.connect('127.0.0.1', {port}, retry_for=60))\n"
              f"d = tcp.connect('127.0.0.1', {dealer_port}, retry_for=60)\n"
              "d.peer_label = 'the dealer'\n"
              "with peer, d, Session(party, peer, dealer=d) as s:\n"
              "    import numpy as np\n"
              "    x = s.share(np.arange(4.0) if party == 0 else None, owner=0)\n"
              "    s.reveal(x * x)\n"
              "    print('ready', flush=True)\n"
              "    if party == 1:\n"
              "        time.sleep(120)\n"
              "    s.reveal(x * x)\n")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(p)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for p in (0, 1)]
    try:
        assert procs[1].stdout.readline().strip() == "ready", procs[1].stderr.read()
        time.sleep(0.5)
        procs[1].send_signal(signal.SIGINT)
        procs[1].wait(PROMPT)
        _, err0 = procs[0].communicate(timeout=PROMPT)
        _, derr = dealer.communicate(timeout=PROMPT)
    finally:
        for p in (*procs, dealer):
            if p.poll() is None:
                p.kill()
    assert "party 1 disconnected" in derr, derr
    assert "different things" not in derr
    assert "the peer was interrupted" in err0 or "the dealer closed the connection" in err0, err0


# -- item 2: check locally before connecting ---------------------------------------------------


@pytest.mark.parametrize("kind", ["parent-is-a-file", "missing-dir"])
def test_impossible_output_is_refused_before_connecting(tmp_path, kind):
    a, _ = _tables(tmp_path)
    out = tmp_path / "a.csv" / "o.csv" if kind == "parent-is-a-file" else tmp_path / "nowhere" / "o.csv"
    start = time.monotonic()
    # nobody listens and --wait is long: the error must come before any waiting
    r = run_pet(*_psi(1, f"127.0.0.1:{free_port()}", a, out), timeout=PROMPT + 30)
    assert r.returncode == 1
    assert "--output" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert "connecting" not in r.stderr
    assert time.monotonic() - start < PROMPT


def test_missing_input_is_refused_before_connecting(tmp_path):
    r = run_pet(*_psi(0, f"127.0.0.1:{free_port()}", tmp_path / "nope.csv", tmp_path / "o.csv"),
                timeout=PROMPT + 30)
    assert r.returncode == 1
    assert "--input" in r.stderr and "no such file" in r.stderr and "waiting" not in r.stderr


# -- item 5: TLS misconfiguration in words -----------------------------------------------------


def _pki(tmp_path, name):
    from pet.transport import make_test_pki

    make_test_pki(tmp_path / name)
    return tmp_path / name


@pytest.mark.parametrize("case", ["tls-at-listener-only", "tls-at-connector-only", "different-cas"])
def test_tls_misconfiguration_is_explained(tmp_path, case):
    a, b = _tables(tmp_path)
    pki1 = _pki(tmp_path, "pki1")
    tls0 = ["--tls-dir", pki1] if case != "tls-at-connector-only" else []
    tls1 = {"tls-at-listener-only": [], "tls-at-connector-only": ["--tls-dir", pki1],
            "different-cas": ["--tls-dir", _pki(tmp_path, "pki2")]}[case]
    address = f"127.0.0.1:{free_port()}"
    p0 = pet_process(*_psi(0, address, a, tmp_path / "o0.csv"), "--wait", 15, *tls0)
    try:
        r1 = run_pet(*_psi(1, address, b, tmp_path / "o1.csv"), *tls1, timeout=PROMPT + 30)
        _, _, err0 = _finish(p0)
    finally:
        if p0.poll() is None:
            p0.kill()
    assert r1.returncode == 1
    both = r1.stderr + err0
    assert "bad frame magic" not in both and "\\x16\\x03" not in both
    if case == "different-cas":
        assert "not signed by" in r1.stderr and "same CA" in r1.stderr, r1.stderr
    else:
        assert "give both sides TLS options, or neither" in r1.stderr, r1.stderr
        assert "give both sides TLS options" in err0, err0


def test_wrong_tls_dir_names_the_flag_and_the_files(tmp_path):
    a, _ = _tables(tmp_path)
    r = run_pet(*_psi(0, f"127.0.0.1:{free_port()}", a, tmp_path / "o.csv"), "--tls-dir", tmp_path / "nope")
    assert r.returncode == 1 and "--tls-dir" in r.stderr and "party0.pem" in r.stderr, r.stderr
    (tmp_path / "empty").mkdir()
    r = run_pet(*_psi(0, f"127.0.0.1:{free_port()}", a, tmp_path / "o.csv"), "--tls-dir", tmp_path / "empty")
    assert r.returncode == 1 and "missing ca.pem, party0.pem, party0.key" in r.stderr, r.stderr


# -- item 4: waiting is visible ----------------------------------------------------------------


def test_connecting_party_says_where_and_timeout_suggests_the_peer_stopped(tmp_path):
    a, _ = _tables(tmp_path)
    address = f"127.0.0.1:{free_port()}"
    r = run_pet(*_psi(1, address, a, tmp_path / "o.csv"), "--wait", 2, timeout=PROMPT + 30)
    assert r.returncode == 1
    assert f"connecting to the peer at {address} ..." in r.stderr
    assert "could not reach the peer" in r.stderr and "check its output" in r.stderr, r.stderr


# -- item 7: flags that fit the role -----------------------------------------------------------


def test_psi_party_that_learns_nothing_needs_no_output(tmp_path):
    a, b = _tables(tmp_path)
    address = f"127.0.0.1:{free_port()}"
    p0 = pet_process(*_psi(0, address, a, tmp_path / "o0.csv", "--reveal", "0"))
    try:
        r1 = run_pet(*_psi(1, address, b, None, "--reveal", "0"), timeout=PROMPT + 30)
        code0, out0, err0 = _finish(p0)
    finally:
        if p0.poll() is None:
            p0.kill()
    assert r1.returncode == 0, r1.stderr
    assert code0 == 0, err0
    assert "does not learn the intersection" in r1.stdout
    assert sorted((tmp_path / "o0.csv").read_text().split()[1:]) == ["2,b", "3,c"]


# -- item 1: same query, same result -------------------------------------------------------------


def _sql_pair(tmp_path, q0: list, q1: list, **tables):
    a, b = _tables(tmp_path, **tables)
    dealer_port, port = free_port(), free_port()
    dealer = pet_process("dealer", "--listen", f"127.0.0.1:{dealer_port}", "--wait", 60)
    common = ["--dealer", f"127.0.0.1:{dealer_port}", "--wait", 60, "--timeout", 60]
    p0 = pet_process("sql", "--party", 0, "--listen", f"127.0.0.1:{port}", "--table", f"a={a}",
                     "--output", tmp_path / "o0.csv", *q0, *common)
    try:
        r1 = run_pet("sql", "--party", 1, "--connect", f"127.0.0.1:{port}", "--table", f"b={b}",
                     "--output", tmp_path / "o1.csv", *q1, *common, timeout=PROMPT + 60)
        code0, _, err0 = _finish(p0)
        _finish(dealer, timeout=30)
    finally:
        for p in (p0, dealer):
            if p.poll() is None:
                p.kill()
    return r1, code0, err0


def test_sql_query_file_with_newline_matches_the_same_query_inline(tmp_path):
    sql = "SELECT COUNT(*) AS n FROM a JOIN b ON a.id = b.id"
    (tmp_path / "q.sql").write_text("select count(*) as n\n  from a join b\n  on a.id = b.id;\n")
    r1, code0, err0 = _sql_pair(tmp_path, ["--query", sql], ["--query-file", tmp_path / "q.sql"])
    assert r1.returncode == 0, r1.stderr
    assert code0 == 0, err0
    assert (tmp_path / "o0.csv").read_text().split() == ["n", "2"]


def test_sql_different_queries_show_both_hashes_and_where(tmp_path):
    r1, code0, err0 = _sql_pair(tmp_path, ["--query", "SELECT COUNT(*) AS n FROM a JOIN b ON a.id = b.id"],
                                ["--query", "SELECT COUNT(*) AS m FROM a JOIN b ON a.id = b.id"])
    assert r1.returncode == 1 and code0 == 1
    for err in (r1.stderr, err0):
        assert "different SQL" in err and "ours " in err and "peer " in err and "first differ at character" in err, err


def test_xgb_help_explains_every_hyper_parameter_and_predict_key_file_says_decrypt():
    fit = run_pet("xgb", "fit", "--help")
    for words in ("number of trees (default 100)", "maximum depth of each tree (default 6)", "(default 0.3)",
                  "(default 32)"):
        assert words in " ".join(fit.stdout.split()), words
    assert ":class:" not in fit.stdout and "``" not in fit.stdout
    pred = run_pet("xgb", "predict", "--help")
    assert "to decrypt the model file" in " ".join(pred.stdout.split())


def test_dir_pet_shows_only_the_public_api():
    r = subprocess.run([sys.executable, "-c", "import pet; print(dir(pet))"], capture_output=True, text=True)
    names = eval(r.stdout)  # noqa: S307 - our own repr of a list of str
    assert "importlib" not in names and "annotations" not in names and "__getattr__" not in names
    assert {"psi", "mpc", "sql", "errors", "__version__"} <= set(names)


# -- item 9: jobs ------------------------------------------------------------------------------


def _job(tmp_path, epsilon=0.6, job_id="j9"):
    a, b = _tables(tmp_path, left="id,v\n" + "".join(f"{i},{i}\n" for i in range(40)),
                   right="id,w\n" + "".join(f"{i},{i}\n" for i in range(20, 70)))
    port = free_port()
    job = tmp_path / "job.yaml"
    job.write_text(f"job: {job_id}\nnetwork:\n  address: 127.0.0.1:{port}\ntasks:\n"
                   "  - name: align\n    type: psi\n    params: {column: id}\n"
                   f"    party0: {{input: {a}, output: {tmp_path / 'a_out.csv'}}}\n"
                   f"    party1: {{input: {b}, output: {tmp_path / 'b_out.csv'}}}\n"
                   "  - name: positives\n    type: dp_count\n    depends: [align]\n"
                   f"    params: {{party: 0, input: {tmp_path / 'a_out.csv'}, ledger: {tmp_path / 'budget.sqlite'}, "
                   f"block: b1, block_epsilon: 1.0, epsilon: {epsilon}}}\n")
    return job


def _run_job(tmp_path, job, *extra):
    p0 = pet_process("run", job, "--party", 0, "--state", tmp_path / "s0.sqlite", "--timeout", 60, *extra)
    try:
        r1 = run_pet("run", job, "--party", 1, "--state", tmp_path / "s1.sqlite", "--timeout", 60, *extra,
                     timeout=PROMPT + 60)
        code0, out0, err0 = _finish(p0)
    finally:
        if p0.poll() is None:
            p0.kill()
    return (code0, out0, err0), r1


def test_run_status_shows_states_timings_and_outputs_and_dp_count_is_an_integer(tmp_path):
    import json
    import sqlite3

    job = _job(tmp_path)
    (code0, out0, err0), r1 = _run_job(tmp_path, job)
    assert code0 == 0 and r1.returncode == 0, (out0, err0, r1.stdout, r1.stderr)
    # dp_count released an integer count (discrete Laplace), as stored in the state file
    with sqlite3.connect(tmp_path / "s0.sqlite") as db:
        (result,) = db.execute("SELECT result FROM task_state WHERE task='positives'").fetchone()
    assert isinstance(json.loads(result)["noisy_count"], int), result

    st = run_pet("run", job, "--status", "--party", 0, "--state", tmp_path / "s0.sqlite")
    assert st.returncode == 0, st.stderr
    text = st.stdout
    assert "job j9, party 0: SUCCESS" in text, text
    assert "1. align" in text and "(psi): SUCCESS" in text and "2. positives" in text
    assert text.count("started ") == 2 and text.count("took ") == 2
    assert f"output: {tmp_path / 'a_out.csv'}" in text and "rows_out: 20" in text
    assert "noisy_count: " in text
    # without --party: every party in the file; a state file that does not exist is an error in words
    both = run_pet("run", job, "--status", "--state", tmp_path / "s1.sqlite")
    assert "job j9, party 1: SUCCESS" in both.stdout and f"output: {tmp_path / 'b_out.csv'}" in both.stdout
    missing = run_pet("run", job, "--status", "--state", tmp_path / "nope.sqlite")
    assert missing.returncode == 1 and "no such state file" in missing.stderr and "Traceback" not in missing.stderr
    assert not (tmp_path / "nope.sqlite").exists()

    # the same count again would over-spend the block: refused in words, shown by --status
    (code0, out0, err0), r1 = _run_job(tmp_path, job, "--rerun")
    assert code0 == 1
    assert "Block(" not in err0 and "0.4 of epsilon 1 is available now" in err0, err0
    assert "0.6 is already spent" in err0
    st = run_pet("run", job, "--status", "--party", 0, "--state", tmp_path / "s0.sqlite")
    assert "job j9, party 0: FAILED" in st.stdout and "(dp_count): FAILED" in st.stdout, st.stdout
    assert "error: BudgetExceeded: task positives: block 'b1' cannot cover epsilon=0.6" in st.stdout, st.stdout


# -- item 10: clean output ---------------------------------------------------------------------


@pytest.mark.parametrize("op", ["+", "*", "-", "<", "@", "public*"])
def test_mpc_shape_mismatch_is_a_pet_error_naming_the_shapes(op):
    import numpy as np

    import pet.mpc as mpc
    from pet.errors import InputError

    def fn(s):
        a = s.share(np.ones(3) if s.party == 0 else None, owner=0)
        b = s.share(np.ones((4, 2)) if s.party == 1 else None, owner=1)
        try:
            if op == "public*":
                a * np.ones(4)
            else:
                {"+": a.__add__, "*": a.__mul__, "-": a.__sub__, "<": a.__lt__, "@": a.__matmul__}[op](b)
        except InputError as exc:
            return exc
        return None

    for exc in mpc.run_local(fn):
        assert isinstance(exc, InputError) and isinstance(exc, ValueError), exc
        assert ("shape mismatch" if op != "@" else "not aligned") in str(exc) and "(3,)" in str(exc), str(exc)


def test_output_files_are_0600_whatever_the_umask_as_documented(tmp_path):
    """Documented in docs/deployment.md, README.md and `pet --help`: outputs are created
    with mode 0600 (owner only) even under umask 022, an existing file replaced alike."""
    import os
    import stat
    from pathlib import Path

    a, b = _tables(tmp_path)
    (tmp_path / "o1.csv").write_text("old\n")
    os.chmod(tmp_path / "o1.csv", 0o644)
    address = f"127.0.0.1:{free_port()}"
    old = os.umask(0o022)
    try:
        p0 = pet_process(*_psi(0, address, a, tmp_path / "o0.csv"))
        r1 = run_pet(*_psi(1, address, b, tmp_path / "o1.csv"), timeout=PROMPT + 30)
        code0, _, err0 = _finish(p0)
    finally:
        os.umask(old)
    assert r1.returncode == 0 and code0 == 0, (r1.stderr, err0)
    for name in ("o0.csv", "o1.csv"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600, name
    root = Path(__file__).resolve().parents[2]
    assert "mode 0600" in (root / "docs" / "deployment.md").read_text()
    assert "mode 0600" in (root / "README.md").read_text()
    assert "mode 0600" in " ".join(run_pet("--help").stdout.split())


# -- item 8: the split demo --------------------------------------------------------------------


def _demo_pair(*extra):
    address = f"127.0.0.1:{free_port()}"
    p0 = pet_process("demo", "--party", 0, "--listen", address, "--steps", "link,mpc", "--timeout", 30, *extra)
    try:
        r1 = run_pet("demo", "--party", 1, "--connect", address, "--steps", "link,mpc", "--timeout", 30, *extra,
                     timeout=PROMPT + 60)
        code0, out0, err0 = _finish(p0)
    finally:
        if p0.poll() is None:
            p0.kill()
    return (code0, out0 + err0), (r1.returncode, r1.stdout + r1.stderr)


def test_split_demo_without_dealer_skips_only_the_mpc_steps():
    for code, out in _demo_pair():
        assert code == 0, out
        assert "skipping the step(s) mpc: they need the MPC dealer, and no --dealer was given here" in out, out
        assert "step link done" in out and "mpc SKIPPED" in out
        assert "mpc      skip" in out
        assert "Traceback" not in out


def test_split_demo_checks_the_dealer_before_the_first_step():
    start = time.monotonic()
    dealer = f"127.0.0.1:{free_port()}"  # nobody listens there
    for code, out in _demo_pair("--dealer", dealer):
        assert code == 1, out
        assert "could not reach the dealer at" in out and "pet dealer --listen" in out, out
        assert "step 1/2" not in out  # nothing ran
    assert time.monotonic() - start < PROMPT


def test_readme_says_the_split_demo_needs_a_dealer():
    from pathlib import Path

    readme = " ".join((Path(__file__).resolve().parents[2] / "README.md").read_text().split())
    assert "split demo needs the MPC dealer" in readme and "--dealer HOSTD:PORT" in readme


# -- item 6: command-line words on the command line ------------------------------------------


def test_label_error_lists_the_columns_like_the_id_error(tmp_path):
    a, _ = _tables(tmp_path)
    r = run_pet("xgb", "fit", "--party", 0, "--listen", f"127.0.0.1:{free_port()}", "--no-dealer", "--input", a,
                "--id", "id", "--label", "y", "--model", tmp_path / "m", "--wait", 60)
    assert r.returncode == 1
    assert "--label 'y' is not a column of" in r.stderr and "['id', 'v']" in r.stderr, r.stderr
    assert "waiting" not in r.stderr


def test_encrypted_model_without_key_file_names_the_flag_before_connecting(tmp_path):
    import os

    from pet.ml.model_io import save_state

    a, _ = _tables(tmp_path)
    save_state(tmp_path / "m.model", "classifier", {"party": 0, "model_id": "m1"}, key=os.urandom(32))
    r = run_pet("xgb", "predict", "--party", 0, "--listen", f"127.0.0.1:{free_port()}", "--no-dealer", "--input",
                a, "--id", "id", "--model", tmp_path / "m.model", "--output", tmp_path / "p.csv", "--wait", 60)
    assert r.returncode == 1
    assert "is encrypted: pass --key-file" in r.stderr and "key=" not in r.stderr, r.stderr
    assert "waiting" not in r.stderr and "Traceback" not in r.stderr
    r = run_pet("xgb", "predict", "--party", 0, "--listen", f"127.0.0.1:{free_port()}", "--no-dealer", "--input",
                a, "--id", "id", "--model", tmp_path / "nope.model", "--output", tmp_path / "p.csv", "--wait", 60)
    assert r.returncode == 1 and "--model" in r.stderr and "no such file" in r.stderr, r.stderr


def test_sql_duplicate_keys_hint_names_the_flag(tmp_path):
    r1, code0, err0 = _sql_pair(tmp_path, ["--query", "SELECT COUNT(*) AS n FROM a JOIN b ON a.id = b.id"],
                                ["--query", "SELECT COUNT(*) AS n FROM a JOIN b ON a.id = b.id"],
                                right="id,w\n2,x\n2,y\n4,z\n")
    assert r1.returncode == 1 and code0 == 1
    for err in (r1.stderr, err0):
        assert "--duplicate-keys reveal_counts" in err and "duplicate_keys=" not in err, err


def test_every_python_keyword_hint_has_command_line_words():
    """Each library hint with a keyword argument that can reach the command line is
    rewritten (pet.cli.main.FLAG_WORDS): grep-found phrases, per command."""
    from pet.cli.main import cli_words

    dup = ("key ['id']: 2 duplicate item(s) (rows repeating an earlier item); PSI needs distinct items -- "
           "pass dedupe=True to keep the first occurrence of each")
    assert cli_words(dup, "psi").endswith("pass --dedupe to keep the first row of each key")
    assert "--id column must hold distinct values" in cli_words(dup, "xgb")
    cases = {
        "m.model is encrypted: pass key=": "--key-file",
        "load and save it with key= in this version": "--key-file",
        "m is not encrypted, but a key was given": "--key-file",
        "GROUP BY on a private key; pass public_groups={column: [values]}": "--public-groups COLUMN=",
        "(pass the same correlations=/dealer= at both parties)": "--no-dealer",
        "plaintext: pass tls=TLSConfig(...), or insecure=True if this network is trusted": "--insecure",
    }
    sql_cases = {
        "AVG output column 'mean' without bounds under differential privacy (pass DP(bounds={'mean': (lo, hi)}): "
        "each row's contribution is clamped to them)": "--bound mean=LO:HI",
        "min_group_size=3 on a row-level query (no GROUP BY or aggregates); aggregate with GROUP BY, or leave out "
        "min_group_size": "--min-group-size 3",
        "min_group_size on a query over one party's tables": "--min-group-size on",
    }
    for text, flag in sql_cases.items():
        out = cli_words(text, "sql")
        assert flag in out and "min_group_size" not in out and "DP(bounds" not in out, out
    for text, flag in cases.items():
        out = cli_words(text, "sql")
        assert flag in out and "=True" not in out and "key=" not in out and "_groups=" not in out, out


def test_csv_rows_are_named_one_based_in_every_command(tmp_path):
    """A bad row is named as "data row N" (1-based, after the header: line N + 1), or by the
    CSV parser's own 1-based line number, before any waiting for the peer."""
    # pet psi: an empty key on line 4 = data row 3
    (tmp_path / "k.csv").write_text("id,v\n1,a\n2,b\n,c\n4,d\n")
    r = run_pet(*_psi(0, f"127.0.0.1:{free_port()}", tmp_path / "k.csv", tmp_path / "o.csv"))
    assert r.returncode == 1 and "--column 'id': data row 3 has no value" in r.stderr, r.stderr
    # pet xgb: a malformed CSV names its line, without a traceback
    (tmp_path / "bad.csv").write_text("id,x\n1,2\n2,3,4\n")
    r = run_pet("xgb", "fit", "--party", 0, "--listen", f"127.0.0.1:{free_port()}", "--no-dealer", "--input",
                tmp_path / "bad.csv", "--id", "id", "--model", tmp_path / "m", "--wait", 60)
    assert r.returncode == 1 and "is not a valid CSV file" in r.stderr and "line 3" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    # pet leiden: a non-finite weight on line 3 = data row 2, checked before connecting
    (tmp_path / "nodes.csv").write_text("node\n1\n2\n3\n")
    (tmp_path / "edges.csv").write_text("source,target,weight\n1,2,1\n2,3,nan\n")
    r = run_pet("leiden", "--party", 0, "--listen", f"127.0.0.1:{free_port()}", "--no-dealer", "--nodes",
                tmp_path / "nodes.csv", "--edges", tmp_path / "edges.csv", "--output", tmp_path / "c.csv",
                "--wait", 60)
    assert r.returncode == 1 and "weight of data row 2 is not finite" in r.stderr, r.stderr
    assert "waiting" not in r.stderr


def test_xgb_progress_has_no_carriage_returns_off_a_terminal():
    import io

    from pet.cli.xgb import tree_progress

    log = io.StringIO()  # not a terminal, like stderr redirected to a file
    bar = tree_progress(0, 20, log)
    for _ in range(20):
        bar.update(1)
    bar.close()
    text = log.getvalue()
    assert "\r" not in text and "20/20 trees" in text and len(text.splitlines()) == 10, text


def test_budget_messages_say_what_is_left_in_words():
    import pet.dp as dp
    from pet.dp.budget import allocate, consume
    from pet.errors import BudgetExceeded

    block = dp.Block(1.0, block_id="b", unlocked="all")
    claim = dp.Claim({"b": 0.3}, claim_id="c")
    assert allocate(claim, {"b": block})
    consume(claim, {"b": block}, 0.1)
    words = block.describe()
    assert words == ("block 'b': 0.7 of epsilon 1 is available now, 0.2 is held by claims not yet spent, "
                     "0.1 is already spent"), words
    with pytest.raises(BudgetExceeded) as info:
        consume(claim, {"b": block}, 0.5)
    assert "epsilon 0.2 left of its allocation" in str(info.value) and "Block(" not in str(info.value)
    renyi = dp.Block(10.0, 1e-6, orders=[8.0, 16.0, 32.0, 64.0], block_id="r", unlocked="all")
    assert "100.0% of the budget is available now" in renyi.describe()


def test_job_psi_task_names_an_empty_key_by_data_row(tmp_path):
    from pet.jobs import parse_job, run_job
    from pet.transport import run_parties

    (tmp_path / "a.csv").write_text("id,v\n1,a\n,b\n3,c\n")
    (tmp_path / "b.csv").write_text("id,w\n1,x\n3,y\n")
    spec = parse_job({"job": "j", "tasks": [
        {"name": "align", "type": "psi", "params": {"column": "id"},
         "party0": {"input": str(tmp_path / "a.csv"), "output": str(tmp_path / "a_out.csv")},
         "party1": {"input": str(tmp_path / "b.csv"), "output": str(tmp_path / "b_out.csv")}}]})
    r0, r1 = run_parties(*(lambda ch, p=p: run_job(spec, p, ch, state_path=tmp_path / f"s{p}.sqlite",
                                                   log=lambda s: None) for p in (0, 1)), timeout=60)
    assert r0.status == "FAILED" and "column 'id'" in r0.error and "data row 2 has no value" in r0.error, r0.error
    assert r1.status == "FAILED"
