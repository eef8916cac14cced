"""`vizwatch train`: the seed's imbalanced classifier (focal loss, oversampling), on core."""
