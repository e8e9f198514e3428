"""Building TripleO images with kolla (optional extra: tripleo-containers[build])."""
