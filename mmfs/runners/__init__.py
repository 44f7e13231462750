"""Runners map the stages onto an engine: the local executor, Ray Data, Apache Beam.

They import the stages, never the run driver (`mmfs.pipelines`), which picks one of them.
"""
