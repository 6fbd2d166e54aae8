package inference

// blasName says which BLAS tensor.MatMul calls.
var blasName = "gonum (pure Go)"

// BLASName says which BLAS the CPU engine's matrix products go through.
func BLASName() string { return blasName }
