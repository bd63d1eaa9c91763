"""Where a job runs: usable CPUs under container limits (``cpus``), object-storage client
settings (``cloud``) and what ``quantrain doctor`` reports (``doctor``)."""
