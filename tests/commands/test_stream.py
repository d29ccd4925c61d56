"""commands.stream: the progress total leaves out what --resume skips."""

from conftest import SAMPLES, make_folder

ELEPHANT = SAMPLES / "elephant.jpg"


def test_progress_total_leaves_out_what_resume_skips(tmp_path):
    import threading as _threading

    from resnet_cli.commands.stream import count_in_background as _count_in_background
    from resnet_cli.outputs.pathset import PathSet
    from resnet_cli.request import InputOptions

    paths = make_folder(tmp_path / "photos", 5, size=(8, 8))

    class Progress:
        total = None

        def update(self, task, total):
            self.total = total

    progress = Progress()
    _count_in_background(
        InputOptions(inputs=(str(tmp_path / "photos"),)), progress, 0, skip=PathSet([str(paths[0]), str(paths[1])])
    )
    for thread in _threading.enumerate():
        if thread.name == "count":
            thread.join()
    assert progress.total == 3
