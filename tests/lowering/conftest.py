import pytest

from .harness import HAVE_CODEGEN


@pytest.fixture(params=["loops", "native"])
def backend(request):
    """Run each lowering test with the Loop IR interpreter and with native code."""
    if request.param == "native" and not HAVE_CODEGEN:
        pytest.skip("kiln.codegen (compile_program) does not exist yet: native run not checked")
    return request.param
