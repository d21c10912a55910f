"""Machine learning: sequential team ratings, models and their evaluation."""
