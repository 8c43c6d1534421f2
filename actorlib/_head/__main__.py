from .._phases import mark

mark("head: python started")

import sys  # noqa: E402

from ._process import main  # noqa: E402

mark("head: imported")
main(sys.argv[1:])
