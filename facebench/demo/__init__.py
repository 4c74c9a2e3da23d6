"""The embedded demo: faces the project renders itself (nothing is downloaded).

:mod:`facebench.demo.params` draws identities and per-image nuisance from seeded streams,
:mod:`facebench.demo.splits` keeps training and benchmark identities disjoint, and
:mod:`facebench.demo.render` draws the images with their five landmarks.
"""
