package sgemm

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// pageDropper returns a function that gives back to the kernel the pages of
// rows j0..j1-1 of the row-major [rows, cols] matrix data, when data is a
// read-only file mapping (a float32 checkpoint's mmap): the rows stay
// readable, faulted back in from the page cache when read. It returns nil
// for memory it must not drop (the Go heap, e.g. a converted float16
// checkpoint). The unembedding's packed copy replaces the mapped lm_head
// for the lens, so dropping it keeps peak RSS near the weights' size.
func pageDropper(data []float32, cols int) func(j0, j1 int) {
	if len(data) == 0 || !fileMapped(uintptr(unsafe.Pointer(&data[0]))) {
		return nil
	}
	page := uintptr(os.Getpagesize())
	all := unsafe.Slice((*byte)(unsafe.Pointer(&data[0])), 4*len(data))
	base := uintptr(unsafe.Pointer(&all[0]))
	return func(j0, j1 int) {
		lo, hi := base+uintptr(4*j0*cols), base+uintptr(4*j1*cols)
		lo = (lo + page - 1) &^ (page - 1) // whole pages inside the rows only
		hi &^= page - 1
		if hi <= lo {
			return
		}
		unix.Madvise(all[lo-base:hi-base], unix.MADV_DONTNEED) // advice: an error only keeps the pages
	}
}

// fileMapped says whether addr lies in a read-only mapping of a file.
func fileMapped(addr uintptr) bool {
	path, perms, ok := mappingOf(addr)
	return ok && strings.HasPrefix(path, "/") && !strings.Contains(perms, "w")
}

// mappingOf finds addr's mapping in /proc/self/maps: its path and permissions.
func mappingOf(addr uintptr) (path, perms string, ok bool) {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return "", "", false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// start-end perms offset dev inode path
		fields := strings.Fields(sc.Text())
		var lo, hi uintptr
		if len(fields) < 5 {
			continue
		}
		if _, err := fmt.Sscanf(fields[0], "%x-%x", &lo, &hi); err != nil {
			continue
		}
		if lo <= addr && addr < hi {
			if len(fields) > 5 {
				path = fields[5]
			}
			return path, fields[1], true
		}
	}
	return "", "", false
}

// bigFloats allocates n float32s outside the Go heap (an anonymous
// mapping), for the packed unembedding: a large, long-lived buffer that the
// garbage collector need not scan and that would otherwise raise the heap
// goal (GOGC) by its own size. free releases it (nil when it fell back to
// the Go heap).
func bigFloats(n int) (s []float32, free func()) {
	if n == 0 {
		return nil, nil
	}
	b, err := unix.Mmap(-1, 0, 4*n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return make([]float32, n), nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), n), func() { unix.Munmap(b) }
}
