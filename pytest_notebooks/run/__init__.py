"""NotebookCase -> ExecutionResult: kernels, papermill, the verdict, the failure block."""
