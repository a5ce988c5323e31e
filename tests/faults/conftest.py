from tests.faults.harness import FIGURES


def pytest_terminal_summary(terminalreporter):
    if not FIGURES:
        return
    tr = terminalreporter
    tr.section("fault tests: what was sent, kept and lost")
    cols = ["fault", "sent", "acknowledged", "stored", "cases", "duplicates",
            "dead_lettered", "drain_s"]
    tr.write_line(" | ".join(cols))
    for row in FIGURES:
        tr.write_line(" | ".join(str(row[c]) for c in cols))
