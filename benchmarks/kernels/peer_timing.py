"""Timing shared by the PyTorch peer scripts, with the method of bench_common.hpp: CUDA events
around each run, an L2 flush (a write of the flush buffer) before each, median over the runs.

Each operation is timed twice. Eager: what a PyTorch user gets, Python and dispatch included — on
an H200 (2026-11-28) that overhead made cuDNN attention's backward take as long at N = 50 as at
N = 197, and LayerNorm's backward as long at 1,600 rows as at 6,304. Graph: the replay of the
operation captured into a CUDA graph, i.e. the kernels' own time — the fair comparison for vts's
kernels, which launch from C++ without that overhead."""
import contextlib
import statistics
import sys

import torch


def check_counts(parser, args):
    """--reps of at least 1 and --warmup of at least 0, or the parser's error (exit status 2): reps 0
    used to end in an IndexError once the device was set up, a negative warm-up ran none silently."""
    if args.reps < 1 or args.warmup < 0:
        parser.error(f"need --reps >= 1 and --warmup >= 0, got --reps {args.reps} --warmup {args.warmup}")


def timer(fn, warmup, reps, flush):
    """(median, min, mean) milliseconds of fn over reps runs, after warmup runs."""
    if reps < 1:
        raise ValueError(f"timer: expected reps >= 1, got {reps}")
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(reps):
        flush.zero_()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    return statistics.median(times), min(times), sum(times) / len(times)


def graphed(fn):
    """fn captured into a CUDA graph (after warm-up on a side stream, as capture requires); returns
    the graph's replay."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph.replay


def eager_and_graph(fn, warmup, reps, flush, inference=False):
    """Timings of fn eager and as a graph replay (None where capture fails), under
    torch.inference_mode() when inference is set."""
    mode = torch.inference_mode if inference else contextlib.nullcontext
    with mode():
        eager = timer(fn, warmup, reps, flush)
    try:
        with mode():
            graph = timer(graphed(fn), warmup, reps, flush)
    except RuntimeError as e:
        print(f"graph capture failed: {str(e).splitlines()[0][:160]}", file=sys.stderr)
        graph = None
    return eager, graph
