"""`make bench` (datasets): the same 5,000 photos as a folder, as 5 WebDataset tar shards and as
one Parquet file (an image-bytes column), classified end to end by the CLI in one run each,
interleaved; and peak memory over 1 shard against 10 (it must not grow with the shards).
Photos: 500×375 JPEGs made from the sample images. int8, so the reading shows (the model's
time would hide it)."""

from __future__ import annotations

import io
import os
import statistics
import tarfile

from bench import WORK, photo_folder, run_cli, weights_file
from table import machine, print_table, record, say

PHOTOS = int(os.environ.get("BENCH_DATASET_PHOTOS", "5000"))
RUNS = int(os.environ.get("BENCH_DATASET_RUNS", "3"))


def shards(folder, count: int, name: str) -> list[str]:
    """``count`` tar shards of the folder's photos (WebDataset keys: NNNNNN.jpg and a .json each)."""
    target = WORK / name
    target.mkdir(exist_ok=True)
    photos = sorted(folder.iterdir())
    per = -(-len(photos) // count)
    paths = []
    for i in range(count):
        path = target / f"{i:06d}.tar"
        paths.append(str(path))
        if path.exists():
            continue
        with tarfile.open(path, "w") as archive:
            for j, photo in enumerate(photos[i * per : (i + 1) * per]):
                key = f"{i:06d}{j:06d}"
                archive.add(photo, f"{key}.jpg")
                meta = f'{{"source": "{photo.name}"}}'.encode()
                info = tarfile.TarInfo(f"{key}.json")
                info.size = len(meta)
                archive.addfile(info, io.BytesIO(meta))
    return paths


def parquet(folder) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = WORK / f"photos{PHOTOS}.parquet"
    if not path.exists():
        photos = sorted(folder.iterdir())
        table = pa.table({"key": [p.stem for p in photos], "jpg": [p.read_bytes() for p in photos]})
        pq.write_table(table, path, row_group_size=500)
    return str(path)


def main() -> None:
    say(f"datasets bench on {machine()}")
    weights = weights_file()
    folder = photo_folder(f"photos{PHOTOS}", (500, 375), PHOTOS)
    inputs = {
        "folder": [str(folder)],
        "5 tar shards": shards(folder, 5, f"shards{PHOTOS}x5"),
        "one Parquet": [parquet(folder)],
    }
    common = ["--weights", str(weights), "--precision", "int8", "-q", "-f", "jsonl", "--overwrite"]
    out = str(WORK / "datasets.jsonl")
    run_cli([*common, "-o", out, str(next(folder.iterdir()))])  # the int8 model built and cached first
    walls: dict[str, list[float]] = {name: [] for name in inputs}
    for _ in range(RUNS):
        for name, paths in inputs.items():
            wall, _, _ = run_cli([*common, "-o", out, *paths])
            walls[name].append(wall)
            say(f"  {name}: {PHOTOS / wall:.1f} img/s")
    rates = {name: PHOTOS / statistics.median(times) for name, times in walls.items()}
    for name in ("5 tar shards", "one Parquet"):
        record(
            f"{name} ÷ folder, end to end",
            f"{rates[name] / rates['folder']:.2f}",
            f"{rates[name]:.1f} ÷ {rates['folder']:.1f} img/s (median of {RUNS}; goal ≥ 1.0)",
        )
    ten = shards(folder, 10, f"shards{PHOTOS}x10")
    peak_one = run_cli([*common, "-o", out, ten[0]])[2]
    peak_ten = run_cli([*common, "-o", out, *ten])[2]
    record(
        "peak RSS, 10 shards ÷ 1 shard",
        f"{peak_ten / peak_one:.3f}",
        f"{peak_one / 1024:.0f} → {peak_ten / 1024:.0f} MiB, {PHOTOS // 10} photos a shard (goal ≤ 1.1)",
    )
    print_table(f"`make bench` (datasets), ResNet50 int8, {PHOTOS} 500×375 JPEGs — {machine()}", "datasets")


if __name__ == "__main__":
    main()
