"""Batch jobs and prompt sweeps (``python -m remixer batch``): many remixes or generations, run
locally with each song read once, or sent to Cog HTTP servers; resumable.

* :mod:`~remixer.batch.jobs`: jobs from sweeps or job files, checked and keyed before any runs;
* :mod:`~remixer.batch.results`: the job folders and ``results.jsonl``, crash-safe;
* :mod:`~remixer.batch.local`: the runner in this process (models once, analysis once per song);
* :mod:`~remixer.batch.remote`: the Cog HTTP client (predictions in flight, retries, cancel);
* :mod:`~remixer.batch.progress`: the progress bar and the summary table;
* :mod:`~remixer.batch.cli`: the command.

Everything but ``local`` (and ``cli``, which imports it only for a local batch) is torch-free.
"""
