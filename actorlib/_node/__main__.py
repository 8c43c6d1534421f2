import sys

from ._process import main

main(sys.argv[1:])
