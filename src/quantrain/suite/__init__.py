"""One symbol's suite of heads: the model-ready ``dataset`` and the target catalogue's view of
it, fitting a head over the folds (``fit``), trade-journal datasets (``journal``) and the trained
records a package is written from (``heads``)."""
