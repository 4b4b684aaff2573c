"""What a trained run answers: predictions (prediction), a run's answers on its test split (inference), where a
network looks (explain), ensembles' members (members), exported models (export), images people bring (uploads), and
the class's decisions on the labels a review doubts (review)."""
