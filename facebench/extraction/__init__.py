"""The extraction stage: image lists in, feature matrices out.

``images`` (lists, decoding, header checks) -> ``detection`` / ``aligner`` / ``enrol`` / ``lowres`` (finding and
aligning faces) -> ``preprocess`` (chips and input profiles) -> ``extract`` (batched model calls, flips, worker
processes) -> ``cache`` (content-keyed feature chunks) and ``store`` (feature stores); ``extractor`` ties them to
one loaded checkpoint (:class:`~facebench.extraction.extractor.FeatureExtractor`).
"""
