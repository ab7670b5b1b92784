"""``rnnlab export``: a trained model as ONNX or TorchScript."""

from __future__ import annotations


def add(commands) -> None:
    export = commands.add_parser("export", help="a trained model as ONNX or TorchScript, its data settings as JSON",
                                 description="Write a trained model of any task with torch.nn's recurrent layer "
                                 "(the same weights) as ONNX or TorchScript, dynamic in batch and length; beside "
                                 "it FILE.json holds the vocabulary, scalers or normalisation. Prints both paths.")
    export.add_argument("--model", required=True, help="run folder of a trained model")
    export.add_argument("--format", required=True, choices=["onnx", "torchscript"])
    export.add_argument("--out", help="file to write (default: the run folder's model.onnx or model.pt)")
    export.set_defaults(handler=run)


def run(args) -> None:
    from ..export import export
    for path in export(args.model, args.format, args.out):
        print(path)
