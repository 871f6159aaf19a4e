"""``method=exact``: the closest counterfactual of a tree ensemble, proven optimal by a MILP.

``grid`` (allowed values of a feature on the data's grid), ``cells`` (segments between splits,
their representative values and exact costs), ``forest`` (the trees as flat arrays), ``milp``
(the formulation), ``solver`` (HiGHS), ``method`` (:class:`ExactExplainer`, the plug-in),
``oracle`` (test helper: no method may beat the optimum). See docs/exact.md.
"""

from cfgen.exact.method import ExactExplainer

__all__ = ["ExactExplainer"]
