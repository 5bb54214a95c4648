"""Terms a detector adds to each row's reconstruction error: the distance to the nearest
training rows (`neighbours`) and the distance beyond each feature's training range
(`training_range`)."""
