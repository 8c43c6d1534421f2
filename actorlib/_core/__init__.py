"""The per-process runtime shared by drivers and workers."""

from ._arguments import Placeholder, pack, unpack
from ._objects import ObjectTable
from ._refs import ObjectRef
from ._runtime import CURRENT_CALL, Identity, Runtime, current, set_current
from ._submitter import TaskSpec
