"""ONNX conformance cases kiln is known to fail, with the reason: {case name: reason}.

The runner reports failures listed here apart from unexpected ones, and lists cases listed here
that pass (so the entry can be removed).
"""

EXPECTED_FAILURES: dict[str, str] = {
    "test_scan_sum": "Scan-8 (batched form with sequence_lens) has no upgrade to Scan-9",
}
