import { type ResultPromise, execa } from 'execa';

/**
 * Someone who can write in the backup directory and races what stackvault does there: waits
 * (inotify) until the first entry of the directory `target` is deleted, that is, a removal is
 * under way inside it, then at once exchanges `target` with `other` (renameat2
 * RENAME_EXCHANGE: one atomic swap, e.g. with a symlink to a directory that is not
 * stackvault's), and ends. Python's ctypes, no compiler.
 */
const SCRIPT = `
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
target, other = sys.argv[1].encode(), sys.argv[2].encode()
fd = libc.inotify_init()
if fd < 0 or libc.inotify_add_watch(fd, target, 0x200) < 0:  # IN_DELETE
    sys.exit('inotify: errno %d' % ctypes.get_errno())
print('ready', flush=True)
while True:
    buf = os.read(fd, 65536)
    off = 0
    while off < len(buf):
        _wd, mask, _cookie, length = struct.unpack_from('iIII', buf, off)
        off += 16 + length
        if mask & 0x200:
            if libc.renameat2(-100, target, -100, other, 2) != 0:  # AT_FDCWD, RENAME_EXCHANGE
                sys.exit('renameat2: errno %d' % ctypes.get_errno())
            print('swapped', flush=True)
            sys.exit(0)
`;

/**
 * Starts the attacker; resolves once its watch is in place, with `ended`, its outcome (held in an
 * object: an async function returning execa's thenable itself would wait for the process to end).
 */
export async function swapOnFirstDelete(target: string, other: string): Promise<{ ended: ResultPromise }> {
  const child = execa('python3', ['-c', SCRIPT, target, other], { reject: false, timeout: 60_000 });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => (String(d).includes('ready') ? resolve() : undefined));
    void child.then((r) => reject(new Error(`the swapping helper ended before it was ready: ${r.stderr}`)));
  });
  return { ended: child };
}
