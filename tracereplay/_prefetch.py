"""A cache prefetch hint for compiled code (``llvm.prefetch``), used by the replay kernel and
the pre-pass scan to load a table row a few iterations before it is read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from llvmlite import ir
from numba import types
from numba.extending import intrinsic


def _prefetch(typingctx, arr, i):
    """Hint the CPU to load element ``i`` of ``arr`` (flat index) into cache; never faults."""

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = builder.module.declare_intrinsic("llvm.prefetch", [i8p], fnty)
        ptr = builder.bitcast(builder.gep(data, [args[1]]), i8p)
        builder.call(fn, [ptr, i32(0), i32(3), i32(1)])  # read, highest locality, data cache
        return context.get_dummy_value()

    return types.void(arr, i), codegen


# Called from compiled code as prefetch(arr, i); the typing context is numba's to pass.
prefetch = cast("Callable[[Any, Any], None]", intrinsic(_prefetch))
