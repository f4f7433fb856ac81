def pytest_addoption(parser):
    parser.addoption("--accept", action="store_true",
                     help="rewrite golden files with the current output instead of comparing")
