"""Defaults for matching that learns, chosen from bench/matching.py's figures (seed 18).

The bench trains on a household's documents before 2024-07 (297) and tests on the 129 after,
10 of which come from correspondents the past never showed (a new dentist, a new insurer).

Learning curve (random draws of N training documents; plain accuracy of the best label,
then, from a probability of 0.7, the share of documents set and the share of those right):

    N      type   corresp.  tags F1 | type set/right   corresp. set/right   tags right/found
    10     81.7   70.8      60.0    | 70.5 / 92.1      55.0 / 100           100 / 39.3
    25     87.1   80.4      72.1    | 75.7 / 99.0      66.7 / 100           96.0 / 47.4
    50     94.6   87.9      82.3    | 88.6 / 97.7      71.3 / 100           98.0 / 52.6
    100    95.6   89.7      84.2    | 92.0 / 98.9      87.3 / 98.5          98.4 / 71.5
    297    96.9   92.2      88.8    | 98.4 / 98.4      93.8 / 98.3          100 / 80.5

(the rules alone, on the same 129: type 84.5, correspondent 32.6, tags F1 26.6).
"""

from __future__ import annotations

# From 50 documents the classifier beats the rules on every field (type 94.6 against 84.5,
# correspondent 87.9 against 32.6) and what it sets is right at least 97.7 % of the time;
# below that, a confident type is wrong one time in 10-12 at N=10 and the curve is still
# steep. Real archives are messier than the bench's, so the lower 25 would be too bold.
MATCHING_MIN_DOCUMENTS = 50

# Sweep over the threshold at 297 documents (set / right): 0.6 gives type 99.2/97.7, 0.7
# type 98.4/98.4 and tags 100 % right, 0.8 drops type to 93.0 set for one point more right,
# 0.9 sets only 76.7 % of correspondents. 0.7 is the lowest where every field is >= 98 %
# right; below it a suggestion is shown for the owner to confirm, never set.
MATCHING_CONFIDENCE_THRESHOLD = 0.7

# A tag is learnt once this many documents carry it: fewer give no probability to trust.
MATCHING_MIN_TAG_DOCUMENTS = 3

# Tags from this probability are suggested (shown); from the threshold they may be set.
MATCHING_TAG_SUGGESTION_FLOOR = 0.3
