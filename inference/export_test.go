package inference

// OpenCUDA lets the external tests replace how OpenOn opens a GPU.
var OpenCUDA = &openCUDA
