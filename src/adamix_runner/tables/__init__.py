"""The paper's tables as declared grids (conf/table/*.yaml): expanded, planned and launched as one multirun each."""
