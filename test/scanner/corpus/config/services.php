<?php

return [
    'grafana' => 'glsa_LLPiydSyrD1gwx9RQG8YOsoA4fz4IllM_d9662413',
    'doppler' => 'dp.st.prd.9SaLwSBdMTmhnbBLTxFuBkBFYQplw3cCY6c8H2DHuXk',
    'age' => 'AGE-SECRET-KEY-1JRPYD6T26ALEHS4YXNP8N3NVDNZA2NMHZRDV5PH4KYGLXNYYATT3JHTG3V',
    'slack_user' => 'xoxp-646422161885-966704641967-9445074620768-d70dbcb2f4f51275a2af1407286ffe86',
    'slack_app' => 'xapp-1-AEL6BUW5F24-0307944481137-92f1ac0287046093e9a4fca4458086270ada7dbb5a04146534414cfe76f2c2cb',
    'vault_batch' => 'hvb.uUP-rXV9P3h997vhvPVsSvFE9-gFiZbqJHNvlZWHO_u9EHE48AhZw1U9fE11i4GKhD3GzOJk9YzLGEKMvm_mKI44VQ4FoKPtLUsWQeBveW6E7mShF1GY6YqrVRHGBniNmz9-PoX6OK',
    'gh_user' => 'ghu_qw3U8vGBzCXHg1QXK3W26nRTDtVqDr44am4j',
    'gh_refresh' => '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',
    'blob' => 'https://acctbc13.blob.core.windows.net/data?sv=2022-11-02&ss=b&srt=sco&sp=rl&se=2027-01-01T00:00:00Z&sig=7sYuQ3lgrs44ynjMoOnaMd8kfNb3pJzPxP5gZXkgX7EB%3D',
    'password' => env('DB_PASSWORD'),
];
