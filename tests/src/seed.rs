//! Seeding SageMaker in the emulator through the real SDK.

use aws_sdk_sagemaker::Client;
use aws_sdk_sagemaker::types::{
    DriftCheckBaselines, DriftCheckModelDataQuality, InferenceSpecification, MetricsSource,
    ModelApprovalStatus, ModelPackageContainerDefinition,
};

pub async fn create_group(sm: &Client, group: &str) {
    sm.create_model_package_group()
        .model_package_group_name(group)
        .model_package_group_description("driftloop test group")
        .send()
        .await
        .expect("CreateModelPackageGroup");
}

/// One XGBoost container with the artifact at `s3://models/{group}/{n}/model.tar.gz`.
fn inference_spec(group: &str, n: usize) -> InferenceSpecification {
    InferenceSpecification::builder()
        .containers(
            ModelPackageContainerDefinition::builder()
                .image("123456789012.dkr.ecr.us-east-1.amazonaws.com/xgboost:1.7-1")
                .model_data_url(format!("s3://models/{group}/{n}/model.tar.gz"))
                .build(),
        )
        .supported_content_types("text/csv")
        .supported_response_mime_types("text/csv")
        .build()
}

/// Registers a package in `group`; returns its ARN. With `baselines`, a data-quality drift-check
/// baseline under `s3://baselines/{group}/{n}/`.
pub async fn create_package(
    sm: &Client,
    group: &str,
    approval: &str,
    n: usize,
    baselines: bool,
) -> String {
    let spec = inference_spec(group, n);
    let mut req = sm
        .create_model_package()
        .model_package_group_name(group)
        .inference_specification(spec)
        .model_approval_status(ModelApprovalStatus::from(approval))
        .customer_metadata_properties("ModelName", format!("{group}-model-{n}"));
    if baselines {
        let src = |f: &str| {
            MetricsSource::builder()
                .content_type("application/json")
                .s3_uri(format!("s3://baselines/{group}/{n}/{f}"))
                .build()
        };
        req = req.drift_check_baselines(
            DriftCheckBaselines::builder()
                .model_data_quality(
                    DriftCheckModelDataQuality::builder()
                        .statistics(src("statistics.json"))
                        .constraints(src("constraints.json"))
                        .build(),
                )
                .build(),
        );
    }
    let out = req.send().await.expect("CreateModelPackage");
    out.model_package_arn().expect("ModelPackageArn").to_owned()
}

pub async fn set_approval(sm: &Client, arn: &str, approval: &str) {
    sm.update_model_package()
        .model_package_arn(arn)
        .model_approval_status(ModelApprovalStatus::from(approval))
        .send()
        .await
        .expect("UpdateModelPackage");
}

/// Registers an approved package whose drift-check model-quality baseline has `constraints_uri`.
pub async fn create_package_with_model_quality(
    sm: &Client,
    group: &str,
    n: usize,
    constraints_uri: &str,
) -> String {
    use aws_sdk_sagemaker::types::DriftCheckModelQuality;
    let spec = inference_spec(group, n);
    let constraints = MetricsSource::builder()
        .content_type("application/json")
        .s3_uri(constraints_uri)
        .build();
    let out = sm
        .create_model_package()
        .model_package_group_name(group)
        .inference_specification(spec)
        .model_approval_status(ModelApprovalStatus::Approved)
        .drift_check_baselines(
            DriftCheckBaselines::builder()
                .model_quality(
                    DriftCheckModelQuality::builder()
                        .constraints(constraints)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("CreateModelPackage");
    out.model_package_arn().expect("ModelPackageArn").to_owned()
}
