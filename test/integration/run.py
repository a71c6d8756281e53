"""Runs every integration test module and ends with `integration: N passed, M failed, K skipped`.

After each test, every daemon or agent the test started (harness.Child) must have ended with
its expected status (0 unless the test said otherwise); one still running is stopped with
SIGTERM first. A failed test prints the stderr of the children it started.
"""

import fnmatch
import os
import sys
import unittest

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)

import harness  # noqa: E402


class CheckedResult(unittest.TextTestResult):
    _first_child = 0

    def startTest(self, test):
        self._first_child = len(harness.Child.started)
        super().startTest(test)

    def stopTest(self, test):
        own = harness.Child.started[self._first_child:]
        for child in own:
            try:
                child.check()
            except AssertionError as e:
                self.addFailure(test, (AssertionError, AssertionError("at teardown: %s" % e), None))
        super().stopTest(test)

    def _print_children(self, test):
        for child in harness.Child.started[self._first_child:]:
            self.stream.writeln(child.stderr_tail())

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._print_children(test)

    def addError(self, test, err):
        super().addError(test, err)
        self._print_children(test)


# Module patterns (shell-style) choose what runs, every test_*.py by default; --exclude=PATTERN
# leaves modules out.
excluded = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--exclude=")]
patterns = [a for a in sys.argv[1:] if not a.startswith("--exclude=")] or ["test_*.py"]
modules = sorted(f for f in os.listdir(here) if any(fnmatch.fnmatch(f, p) for p in patterns)
                 and not any(fnmatch.fnmatch(f, x) for x in excluded))
suite = unittest.TestSuite(unittest.defaultTestLoader.discover(here, pattern=m) for m in modules)
result = unittest.TextTestRunner(verbosity=2, resultclass=CheckedResult).run(suite)
failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
skipped = len(result.skipped)
# A test that failed twice (in its body and at teardown) counts once.
failed_tests = {id(t) for t, _ in result.failures + result.errors} | {id(t) for t in result.unexpectedSuccesses}
passed = result.testsRun - len(failed_tests) - skipped
if result.testsRun == 0:
    print("integration: no test ran for %s" % " ".join(patterns))
    failed = 1
elif failed:
    os.environ["METRICS_KEEP_LOGS"] = "1"
    print("children's stderr kept in %s" % harness.LOG_DIR)
print("integration: %d passed, %d failed, %d skipped" % (passed, len(failed_tests) or failed, skipped))
sys.exit(1 if failed else 0)
