import { describe, expect, it } from 'vitest';
import { classify, keepEnds, shownRepository } from '../../src/offsite/restic.js';

// restic 0.14's own stderr for each situation (seen against rclone serve restic and sftp).
const CASES: Array<[string, string, RegExp]> = [
  ['wrong password', 'Fatal: wrong password or no key found\n', /password does not open the repository/],
  ['no repository', 'Fatal: unable to open config file: <config/> does not exist\nIs there a repository at the following location?\nrest:http://127.0.0.1:1/\n', /There is no restic repository at/],
  [
    'refused',
    'Fatal: unable to open config file: Head "http://127.0.0.1:1/config": dial tcp 127.0.0.1:1: connect: connection refused\nIs there a repository at the following location?\n',
    /cannot be reached: unable to open config file/,
  ],
  ['dropped', 'Fatal: unable to open config file: Head "http://127.0.0.1:1/config": EOF\nIs there a repository at the following location?\n', /cannot be reached/],
  // Seen on CI: the server went down between two requests of one kept-alive connection.
  [
    'closed while idle',
    'Fatal: unable to open config file: client.Head: Head "http://127.0.0.1:1/config": http: server closed idle connection\nIs there a repository at the following location?\n',
    /cannot be reached/,
  ],
  ['write after a drop', 'Fatal: unable to open config file: Head "http://127.0.0.1:1/config": write tcp 127.0.0.1:5->127.0.0.1:1: write: broken pipe\n', /cannot be reached/],
  ['locked', 'Fatal: unable to create lock in backend: repository is already locked by PID 7 on vm by root\n', /locked by another restic run/],
  ['other', 'Fatal: something new\n', /restic failed \(exit 1\): something new/],
];

describe('restic failures, in one sentence', () => {
  it.each(CASES)('%s', (_name, stderr, expected) => {
    const e = classify(stderr, 1);
    expect(e.message).toMatch(expected);
    expect(e.exitCode).toBe(10);
  });

  it('says what restic said when it finds no repository, so a mistaken case shows its cause', () => {
    expect(classify(CASES[1]![1], 1).message).toMatch(/\(restic: unable to open config file: <config\/> does not exist\)/);
  });

  it('keeps the start and the end of a long stderr, where the fatal line is', () => {
    const retries = 'Load(<config/0>) returned error, retrying after 1s\n'.repeat(1000);
    const kept = keepEnds(`${retries}Fatal: unable to open config file: EOF\n`);
    expect(kept.length).toBeLessThanOrEqual(16_384 + 3);
    expect(kept.startsWith('Load(<config/0>)')).toBe(true);
    expect(kept).toMatch(/Fatal: unable to open config file: EOF\n$/);
    expect(keepEnds('short')).toBe('short');
  });

  it("judges by restic's last fatal line, not by the retry lines before it", () => {
    const retries = 'Load(<lock/1>, 0, 0) returned error, retrying after 1.1s: Head "http://127.0.0.1:1/locks/1": EOF\n'.repeat(400);
    const locked = classify(keepEnds(`${retries}Fatal: unable to create lock in backend: repository is already locked by PID 7 on vm by root\n`), 1);
    expect(locked.message).toMatch(/locked by another restic run/);
    const none = classify(keepEnds(`${retries}${CASES[1]![1]}`), 1);
    expect(none.message).toMatch(/There is no restic repository at .*\(restic: unable to open config file: <config\/> does not exist\)/);
  });

  it.each([
    ['rest:http://ruser:Rest@Pw-5566@127.0.0.1:18765/', 'rest:http://***@127.0.0.1:18765/', ['Rest', 'Pw-5566']],
    ['rest:https://u:p/a@ss@host/x', 'rest:https://***@host/x', ['p/a', 'ss@']],
    ['s3:https://key:se@cret@s3.example/bucket', 's3:https://***@s3.example/bucket', ['se@cret', 'cret']],
    ['rest:https://backup.example/bot', 'rest:https://backup.example/bot', []],
  ])('hides all of the user info of %s, up to its last @', (repo, shown, hidden) => {
    process.env.RESTIC_REPOSITORY = repo;
    try {
      expect(shownRepository()).toBe(shown);
      const e = classify(`Fatal: unable to open repository at ${repo}: dial tcp: connection refused\nthen ${repo} again\n`, 1);
      for (const h of hidden) expect(e.message).not.toContain(h);
    } finally {
      delete process.env.RESTIC_REPOSITORY;
    }
  });

  it('never shows a password that is part of the repository URL', () => {
    process.env.RESTIC_REPOSITORY = 'rest:https://user:hunter2@backup.example/bot';
    try {
      expect(shownRepository()).toBe('rest:https://***@backup.example/bot');
      const e = classify('Fatal: Head "https://user:hunter2@backup.example/bot/config": dial tcp: no such host\n', 1);
      expect(e.message).not.toContain('hunter2');
    } finally {
      delete process.env.RESTIC_REPOSITORY;
    }
  });
});
