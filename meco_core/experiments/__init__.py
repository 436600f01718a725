"""Experiments that train models and then judge them: above both `train` and `evaluation`.

`compare` (the same-budget comparison behind `meco compare` and the README's results table)
trains through `train` and scores through `evaluation`; neither of those imports this package.
"""
