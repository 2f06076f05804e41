"""What the API serves, one module per job.

* :mod:`.forecast_index` – the forecasts export indexed for O(1) lookups;
* :mod:`.feature_source` – lazy access to the features table (dates outside the forecasts);
* :mod:`.model_bundle` – the champion, verified in a child process (:mod:`.model_check`)
  before it is loaded here;
* :mod:`.snapshot` – the immutable bundle of the three that a request reads, and id resolution;
* :mod:`.predictor` – answering queries from the forecasts, or with the model;
* :mod:`.reloader` – polling the sources and swapping the snapshot atomically;
* :mod:`.errors` – the load, source and prediction errors.
"""
