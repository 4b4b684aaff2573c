"""Each run kind on the pages, one module per kind as in galaxy_core.training.kinds (the library imports no
Streamlit, so a kind's form and views live here): transfer (the Train page's "Start from a run" form, a run's link
to its base), ensemble (making one, its members on Evaluate), label_review (the review run's form), seed_ensemble
(the Networks field), train (the recipe's fields the others share) and challenge_score (the Challenge page's
"Submit a run").
"""
