// POST /v1/files with upload progress: fetch cannot report upload progress, so this one call
// uses XMLHttpRequest; its result is typed by the generated schema all the same.
import { ApiError, CSRF_HEADER, csrfToken, type FileObject, type Problem } from "./client";

export function uploadDataset(
  file: File,
  onProgress: (fraction: number) => void,
  signal?: AbortSignal,
): Promise<FileObject> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/files");
    xhr.withCredentials = true;
    xhr.setRequestHeader(CSRF_HEADER, csrfToken());
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    };
    xhr.onload = () => {
      let body: { error?: { code?: string; message?: string; details?: Problem[] } } | null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        resolve(body as FileObject);
        return;
      }
      const error = body?.error;
      reject(
        new ApiError(
          xhr.status,
          error?.code ?? `http_${xhr.status}`,
          error?.message ?? xhr.statusText,
          null,
          error?.details ?? null,
        ),
      );
    };
    xhr.onerror = () => reject(new ApiError(0, "network", "network error"));
    xhr.onabort = () => reject(new ApiError(0, "aborted", "upload cancelled"));
    signal?.addEventListener("abort", () => xhr.abort());
    const form = new FormData();
    form.append("purpose", "fine-tune");
    form.append("file", file, file.name);
    xhr.send(form);
  });
}
