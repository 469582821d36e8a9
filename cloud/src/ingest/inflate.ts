// Gunzips a request body with a ceiling on the inflated size: a few KiB of gzip can inflate to GiBs.
import { gunzip } from 'node:zlib';
import { CloudError } from '../errors.ts';

/**
 * zlib's maxOutputLength makes the inflater stop and fail as soon as its output passes the cap, chunk by
 * chunk, so a gzip bomb costs at most `maxBytes` (+ one chunk) of memory and the CPU to get there.
 */
export function inflateGzip(body: Buffer, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    gunzip(body, { maxOutputLength: maxBytes }, (err, out) => {
      if (!err) return resolve(out);
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
        return reject(new CloudError('INFLATED_TOO_LARGE', `limit ${maxBytes} bytes`));
      }
      reject(new CloudError('BODY_NOT_GZIP', err.message));
    });
  });
}
