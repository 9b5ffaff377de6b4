//! Reads an RWS upload form: a `product` field and one or more files.

use bytes::Bytes;
use cairn_core::upload::UploadForm;
use cairn_http::ApiError;

/// Extensions of the files an upload may carry.
const PACKAGE_EXTENSIONS: [&str; 1] = [".deb"];

/// Parses a `multipart/form-data` body. As in RWS, a file's name is its form field
/// name (`-F 'hello_1.0_amd64.deb=@…'`); a field whose name is not a package file
/// name (`-F file=@…`) falls back to the part's `filename`.
pub async fn parse(content_type: &str, body: Bytes) -> Result<UploadForm, ApiError> {
    let boundary = multer::parse_boundary(content_type).map_err(|_| {
        ApiError::bad_request("expected a multipart/form-data body with a boundary")
    })?;
    let stream = futures::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut form = UploadForm::default();
    while let Some(field) = multipart.next_field().await.map_err(|e| match e {
        multer::Error::ReadHeaderFailed(_) => ApiError::bad_request(format!(
            "malformed multipart body: {e} (part headers, field names and file names \
             must not contain control characters such as NUL)"
        )),
        e => ApiError::bad_request(format!("malformed multipart body: {e}")),
    })? {
        let name = field.name().unwrap_or_default().to_string();
        let part_filename = field.file_name().map(str::to_string);
        let data = field
            .bytes()
            .await
            .map_err(|e| ApiError::bad_request(format!("malformed multipart body: {e}")))?;
        if name == "product" && part_filename.is_none() {
            let product = String::from_utf8(data.to_vec())
                .map_err(|_| ApiError::bad_request("product is not UTF-8"))?;
            form.product = Some(product.trim().to_string());
            continue;
        }
        let is_package_name = |n: &str| PACKAGE_EXTENSIONS.iter().any(|e| n.ends_with(e));
        let filename = if is_package_name(&name) || part_filename.is_none() {
            name
        } else {
            part_filename.unwrap_or_default()
        };
        form.files.push((filename, data));
    }
    Ok(form)
}
