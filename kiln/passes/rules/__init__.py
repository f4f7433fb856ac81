"""Rule tables for the simplify pass. Each table is a list of Rules; tables compose with +."""
