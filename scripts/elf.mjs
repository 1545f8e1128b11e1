// The machine an ELF file is built for, read from its header: what build:arm64 checks its
// output by, and test:arm64 the binary npm installed.
import fs from 'node:fs'

export const EM_AARCH64 = 183

/** The ELF header's e_machine of `file`, or null when it is not an ELF file. */
export function elfMachine(file) {
  const head = Buffer.alloc(20)
  const fd = fs.openSync(file, 'r')
  try {
    fs.readSync(fd, head, 0, head.length, 0)
  } finally {
    fs.closeSync(fd)
  }
  return head.toString('latin1', 0, 4) === '\x7fELF' ? head.readUInt16LE(18) : null
}
