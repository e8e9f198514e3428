"""tripleo-containers: prepare and deliver the container images of a TripleO overcloud."""
