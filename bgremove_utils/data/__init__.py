"""The data layer: pictures read and written safely, real photos from the dependencies, the course's
drawn sample, pairs found by stem and split, datasets and loaders, the Kaggle download."""
