"""Rewriting machinery: the pattern language, rules and their driver, passes, analyses, instruments."""
