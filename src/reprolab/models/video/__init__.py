"""Video classifiers: the TSN/TSM consensus network and the motion modules of SELFY and MotionSqueeze."""
