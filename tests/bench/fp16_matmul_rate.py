#!/usr/bin/env python3
"""The card's dense fp16 rate on the 34B linear layers, for bench's prefill rows to be read against: PyTorch's
torch.matmul (cuBLAS, fp16 in, fp32 accumulation) of ROWS x in by in x out for every linear layer of one forward pass
(q/k/v fused, o, gate/up fused, down; 48 layers), weights already fp16, so this is the ceiling a dequantize-then-GEMM
prefill approaches. Usage on the GPU machine: fp16_matmul_rate.py [ROWS ...] (default 512 1024)."""
import sys
import torch

HIDDEN, INTER, KV, LAYERS = 8192, 22016, 1024, 48
SHAPES = [(HIDDEN, HIDDEN + 2 * KV), (HIDDEN, HIDDEN), (HIDDEN, 2 * INTER), (INTER, HIDDEN)]  # (in, out)


def main():
    dev = torch.device("cuda")
    weights = [torch.randn(i, o, device=dev, dtype=torch.float16) * 0.02 for i, o in SHAPES]
    print(torch.cuda.get_device_name(), "torch", torch.__version__)
    for rows in [int(a) for a in sys.argv[1:]] or [512, 1024]:
        xs = [torch.randn(rows, i, device=dev, dtype=torch.float16) for i, _ in SHAPES]

        def one_pass():
            for x, w in zip(xs, weights):
                torch.matmul(x, w)

        for _ in range(3):
            one_pass()
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        reps = 10
        start.record()
        for _ in range(reps):
            one_pass()
        end.record()
        torch.cuda.synchronize()
        ms = start.elapsed_time(end) / reps * LAYERS  # every layer has the same shapes
        flops = 2.0 * rows * sum(i * o for i, o in SHAPES) * LAYERS
        print(f"fp16 torch.matmul, {rows} rows, linear layers of one pass: {ms:.1f} ms -> {flops / ms / 1e9:.0f} TFLOP/s")


if __name__ == "__main__":
    main()
